"""Optimizer trajectories: snapshots during training, path geometry and PCA against closed
forms for a straight line and an ellipse, and the PCA plane of Li et al. 2018 (Sec. 6)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.empirical import train
from genlab.settings import TrainSettings
from genlab.empirical._slices import flat, loss_at, trainable_parameters
from genlab.empirical._trajectory import pca_plane, snapshot_hook, trajectory_statistics
from genlab.models import ArchSpec

#: Float64 rounding of sums / SVDs over a few dozen 50-dimensional snapshots of size O(1-10).
GEOMETRY_TOL = 1e-10


def _orthonormal_pair(d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, 2)))
    return q[:, 0], q[:, 1]


def _aligned(component: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """``expected`` with the sign of ``component`` (principal directions are defined up to sign)."""
    return expected * np.sign(component @ expected)


def test_straight_line_has_path_length_equal_distance_and_one_component() -> None:
    rng = np.random.default_rng(0)
    start, direction = rng.normal(size=50), rng.normal(size=50)
    s = np.cumsum(rng.uniform(0.1, 1.0, size=12))  # uneven, monotone steps along one line
    snapshots = [start + sk * direction for sk in s]
    stats = trajectory_statistics(snapshots)
    expected = (s[-1] - s[0]) * np.linalg.norm(direction)
    assert stats.path_length == pytest.approx(expected, rel=GEOMETRY_TOL)
    assert stats.distance == pytest.approx(expected, rel=GEOMETRY_TOL)
    assert stats.straightness == pytest.approx(1.0, rel=GEOMETRY_TOL)
    assert stats.explained_variance_ratio[0] == pytest.approx(1.0, abs=GEOMETRY_TOL)
    unit = direction / np.linalg.norm(direction)
    np.testing.assert_allclose(stats.components[0], _aligned(stats.components[0], unit), atol=GEOMETRY_TOL)
    np.testing.assert_allclose(np.linalg.norm(stats.components, axis=1), 1.0, rtol=GEOMETRY_TOL)
    # relative to the final point: projection onto the line is (s_k - s_K) ||direction||
    sign = np.sign(stats.components[0] @ unit)
    np.testing.assert_allclose(stats.projections[:, 0], sign * (s - s[-1]) * np.linalg.norm(direction), atol=GEOMETRY_TOL * 10)
    np.testing.assert_allclose(stats.projections[:, 1], 0.0, atol=GEOMETRY_TOL * 10)


def test_ellipse_matches_the_closed_form() -> None:
    """theta_k = c + A cos(phi_k) u + B sin(phi_k) v over one period (phi_k = 2 pi k / K): the mean
    is c exactly (sum of cos and sin vanish), the covariance has A^2/2 along u and B^2/2 along v
    (sum cos^2 = sum sin^2 = K/2, sum cos sin = 0), so the explained variance ratios are
    A^2/(A^2+B^2) and B^2/(A^2+B^2); the path is K - 1 chords of the ellipse."""
    K, A, B = 40, 3.0, 1.0
    u, v = _orthonormal_pair(50, 1)
    c = np.random.default_rng(2).normal(size=50)
    phi = 2 * np.pi * np.arange(K) / K
    theta = c + A * np.cos(phi)[:, None] * u + B * np.sin(phi)[:, None] * v
    stats = trajectory_statistics(torch.from_numpy(theta))
    ratio = stats.explained_variance_ratio
    np.testing.assert_allclose(ratio[:2], [A**2 / (A**2 + B**2), B**2 / (A**2 + B**2)], rtol=GEOMETRY_TOL)
    np.testing.assert_allclose(ratio[2:], 0.0, atol=GEOMETRY_TOL)
    e1, e2 = _aligned(stats.components[0], u), _aligned(stats.components[1], v)
    np.testing.assert_allclose(stats.components, np.stack([e1, e2]), atol=GEOMETRY_TOL)
    expected = np.stack([A * (np.cos(phi) - np.cos(phi[-1])) * (e1 @ u), B * (np.sin(phi) - np.sin(phi[-1])) * (e2 @ v)], axis=1)
    np.testing.assert_allclose(stats.projections, expected, atol=GEOMETRY_TOL)
    chords = np.hypot(A * np.diff(np.cos(phi)), B * np.diff(np.sin(phi))).sum()
    assert stats.path_length == pytest.approx(chords, rel=GEOMETRY_TOL)
    assert stats.distance == pytest.approx(np.hypot(A * (np.cos(phi[-1]) - 1), B * np.sin(phi[-1])), rel=GEOMETRY_TOL)
    assert 0 < stats.straightness < 0.1


def test_snapshot_hook_stores_every_other_measured_step() -> None:
    x = np.random.default_rng(0).normal(size=(16, 3))
    y = np.random.default_rng(1).normal(size=(16, 1))
    net = ArchSpec(depth=1).to_torch(4, input_shape=(3,), seed=0, dtype=torch.float64)
    theta0 = flat(trainable_parameters(net)).numpy()
    hook, snapshots = snapshot_hook(every=2)
    run = train(net, x, y, TrainSettings(lr=0.1, steps=25, measure_every=5), hooks=[hook])
    assert run.steps.tolist() == [0, 5, 10, 15, 20, 25]
    assert snapshots.steps == [0, 10, 20]
    assert run.measurements == {}  # the hook records nothing that would misalign with run.steps
    assert len(snapshots) == 3 and all(s.dtype == np.float64 and s.shape == theta0.shape for s in snapshots)
    np.testing.assert_array_equal(snapshots[0], theta0)  # a copy taken before any update
    assert not np.array_equal(snapshots[1], snapshots[0])


def test_pca_plane_of_a_training_run() -> None:
    """The grid is centred on the final point (exactly 0 for odd points), where the loss is
    that of the trained net, and it covers every projected snapshot."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 5)), rng.normal(size=(24, 1))
    net = ArchSpec(depth=1, b_std=0.1).to_torch(8, input_shape=(5,), seed=0, dtype=torch.float64)
    hook, snapshots = snapshot_hook()
    train(net, x, y, TrainSettings(lr=0.3, steps=60, measure_every=5), hooks=[hook])
    a, b, losses, projections = pca_plane(net, snapshots, x, y, points=9, margin=0.2)
    assert losses.shape == (9, 9) and projections.shape == (len(snapshots), 2)
    assert a[4] == 0 and b[4] == 0
    np.testing.assert_array_equal(projections[-1], 0.0)
    assert losses[4, 4] == pytest.approx(loss_at(net, trainable_parameters(net), x, y), abs=1e-12)
    assert np.all(np.abs(projections) <= np.stack([a[-1], b[-1]]) + 1e-12)
    assert losses[4, 4] < losses.max()  # GD went downhill: the final point is not the worst


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: snapshot_hook(every=0), ValueError, r"every must be an int >= 1; got 0"),
        (lambda: trajectory_statistics([np.zeros(3)]), ValueError, r"snapshots must hold >= 2 vectors; got 1"),
        (lambda: trajectory_statistics([np.zeros(3), np.zeros(4)]), ValueError, r"snapshots must all have the same length"),
        (lambda: trajectory_statistics([np.zeros((3, 1)), np.zeros((3, 1))]), ValueError, r"snapshots\[0\] must be a flat"),
        (lambda: trajectory_statistics(3.0), TypeError, r"snapshots must be a sequence of flat vectors"),
        (lambda: trajectory_statistics([np.zeros(3), np.full(3, np.nan)]), ValueError, r"snapshots must be finite"),
    ],
)
def test_bad_inputs_name_the_argument(call, error: type, match: str) -> None:  # noqa: ANN001
    with pytest.raises(error, match=match):
        call()


def test_pca_plane_rejects_mismatched_snapshots() -> None:
    net = ArchSpec(depth=1).to_torch(4, input_shape=(3,), seed=0, dtype=torch.float64)
    x, y = np.zeros((2, 3)), np.zeros((2, 1))
    with pytest.raises(ValueError, match=r"snapshots must have the module's 16 trainable parameters; got 5"):
        pca_plane(net, [np.zeros(5), np.ones(5)], x, y)
    with pytest.raises(ValueError, match=r"margin must be a float >= 0; got -1"):
        pca_plane(net, [np.zeros(16), np.ones(16)], x, y, margin=-1)
