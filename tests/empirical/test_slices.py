"""Loss-landscape slices: filter normalisation (Li et al. 2018), 1D interpolation and the
linear-mode-connectivity barrier, and 2D planes, against closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genlab.empirical import train
from genlab.settings import TrainSettings
from genlab.empirical._slices import (
    barrier,
    filter_normalized_direction,
    flat,
    interpolate,
    loss_at,
    plane,
    trainable_parameters,
    unflat,
)
from genlab.empirical._train import per_sample_loss
from genlab.models import ArchSpec

#: Float64 rounding of one norm / rescaling of a few hundred entries.
NORM_TOL = 1e-12
#: Float64 rounding of a loss of O(1) evaluated batched (vmap) vs. directly.
LOSS_TOL = 1e-12


def _data(n: int = 24, d: int = 5, k: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, k))


def _direct_loss(module: nn.Module, params: dict[str, torch.Tensor], x: np.ndarray, y: np.ndarray, loss: str = "mse") -> float:
    """L(theta) by loading theta into a copy of the module and calling it (no functional_call)."""
    import copy

    clone = copy.deepcopy(module)
    with torch.no_grad():
        for name, p in clone.named_parameters():
            if name in params:
                p.copy_(params[name])
        out = clone(torch.from_numpy(x))
        scale = float(getattr(clone, "loss_scale", 1.0))
        return scale * float(per_sample_loss(out, torch.from_numpy(y), loss).mean())


class _Mixed(nn.Module):
    """torch layers: a conv with bias, a LayerNorm (1-D params, not filters), a bias-free linear."""

    def __init__(self) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.conv = nn.Conv1d(2, 3, 3, dtype=torch.float64)
        self.norm = nn.LayerNorm(9, dtype=torch.float64)
        self.head = nn.Linear(9, 2, bias=False, dtype=torch.float64)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(torch.relu(self.conv(x.view(-1, 2, 5))).flatten(1)))


def _filter_norms(params: dict[str, torch.Tensor], weight: str, bias: str | None) -> torch.Tensor:
    parts = [params[weight].reshape(params[weight].shape[0], -1)]
    if bias is not None:
        parts.append(params[bias].reshape(-1, 1))
    return torch.linalg.vector_norm(torch.cat(parts, dim=1), dim=1)


@pytest.mark.parametrize(("kind", "input_shape"), [("fc", (5,)), ("conv1d", (6, 2))])
def test_filter_normalisation_matches_filter_norms_including_bias(kind: str, input_shape: tuple[int, ...]) -> None:
    """ScaledLinear rows and ScaledConv output channels (out, in, k), each with its bias entry."""
    net = ArchSpec(kind=kind, depth=2, b_std=0.3).to_torch(7, input_shape=input_shape, seed=0, dtype=torch.float64)
    theta = trainable_parameters(net)
    d = filter_normalized_direction(net, seed=1)
    assert list(d) == list(theta)
    for prefix in ("hidden.0", "hidden.1", "readout"):
        torch.testing.assert_close(
            _filter_norms(d, f"{prefix}.weight", f"{prefix}.bias"),
            _filter_norms(theta, f"{prefix}.weight", f"{prefix}.bias"), rtol=NORM_TOL, atol=NORM_TOL,
        )
        # the bias is part of the filter: the weight row alone is not normalised
        assert not torch.allclose(_filter_norms(d, f"{prefix}.weight", None), _filter_norms(theta, f"{prefix}.weight", None))


def test_filter_normalisation_on_torch_layers_zeroes_other_1d_parameters() -> None:
    net = _Mixed()
    theta = trainable_parameters(net)
    d = filter_normalized_direction(net, seed=4)
    torch.testing.assert_close(_filter_norms(d, "conv.weight", "conv.bias"), _filter_norms(theta, "conv.weight", "conv.bias"),
                               rtol=NORM_TOL, atol=NORM_TOL)
    torch.testing.assert_close(_filter_norms(d, "head.weight", None), _filter_norms(theta, "head.weight", None),
                               rtol=NORM_TOL, atol=NORM_TOL)
    assert torch.all(d["norm.weight"] == 0) and torch.all(d["norm.bias"] == 0)  # set by zeros_like: exact


def test_filter_direction_is_deterministic_in_seed_and_orthogonalisable() -> None:
    net = ArchSpec(depth=1, b_std=0.3).to_torch(6, input_shape=(5,), seed=0, dtype=torch.float64)
    d1, again, d2 = (filter_normalized_direction(net, seed=s) for s in (1, 1, 2))
    assert all(torch.equal(d1[n], again[n]) for n in d1)
    assert not torch.allclose(flat(d1), flat(d2))
    d2o = filter_normalized_direction(net, seed=2, orthogonal_to=d1)
    # one Gram-Schmidt step: <d2o, d1> = 0 up to rounding relative to ||d1|| ||d2||
    assert abs(float(torch.dot(flat(d2o), flat(d1)))) < 1e-12 * float(flat(d1).norm() * flat(d2).norm())


def test_flat_and_unflat_round_trip() -> None:
    net = ArchSpec(depth=1).to_torch(4, input_shape=(3,), seed=0, dtype=torch.float64)
    theta = trainable_parameters(net)
    back = unflat(flat(theta), theta)
    assert all(torch.equal(back[n], theta[n]) for n in theta)


def test_interpolation_endpoints_are_the_direct_losses_and_convex_has_no_barrier() -> None:
    """A depth-0 net is linear in theta, so MSE is a convex quadratic along any line: the path
    lies below its chord and the barrier is 0 (attained at the endpoints, exactly)."""
    x, y = _data()
    spec = ArchSpec(depth=0, b_std=0.5, out_dim=2)
    net_a = spec.to_torch(1, input_shape=(5,), seed=0, dtype=torch.float64)
    net_b = spec.to_torch(1, input_shape=(5,), seed=1, dtype=torch.float64)
    theta_a, theta_b = trainable_parameters(net_a), trainable_parameters(net_b)
    t, losses = interpolate(net_a, theta_a, theta_b, x, y, points=11)
    assert t[0] == 0 and t[-1] == 1 and losses.shape == (11,)  # the range's ends are assigned: exact
    assert abs(losses[0] - _direct_loss(net_a, theta_a, x, y)) < LOSS_TOL
    assert abs(losses[-1] - _direct_loss(net_a, theta_b, x, y)) < LOSS_TOL
    assert barrier(t, losses) == pytest.approx(0.0, abs=LOSS_TOL)
    # along the line L(t) is exactly quadratic: its second differences are constant
    second = np.diff(losses, 2)
    np.testing.assert_allclose(second, second[0], rtol=1e-9)
    assert second[0] > 0


def test_interpolation_is_batch_invariant_and_extrapolates() -> None:
    """chunk_size only changes how many vectors go through vmap together, not the values."""
    x, y = _data()
    net = ArchSpec(depth=1, b_std=0.1).to_torch(8, input_shape=(5,), seed=0, dtype=torch.float64)
    theta_a = trainable_parameters(net)
    theta_b = {n: v + 0.3 * filter_normalized_direction(net, seed=3)[n] for n, v in theta_a.items()}
    t, one = interpolate(net, theta_a, theta_b, x, y, points=9, t_range=(-0.5, 1.5), chunk_size=1)
    _, many = interpolate(net, theta_a, theta_b, x, y, points=9, t_range=(-0.5, 1.5), chunk_size=4)
    np.testing.assert_allclose(one, many, rtol=LOSS_TOL)
    assert t[0] == -0.5 and t[-1] == 1.5  # the range's ends are assigned to the grid: exact
    # The grid steps by 0.25 from -0.5, so 0 and 1 are on it exactly. The barrier is the explicit
    # max above the chord over t in [0, 1] (here 0: the line is convex there); the extrapolated
    # points lie above the extended chord (by 0.40 at t = -0.5), so counting them would fail.
    inside = (t >= 0) & (t <= 1)
    chord = (1 - t) * one[t == 0.0][0] + t * one[t == 1.0][0]
    assert barrier(t, one) == pytest.approx(float(np.max((one - chord)[inside])), abs=LOSS_TOL)
    assert np.max(one - chord) > 0.1
    assert torch.equal(flat(trainable_parameters(net)), flat(theta_a))  # the module is not mutated


class _Product(nn.Module):
    """f(x) = a b x: the symmetry (a, b) -> (-a, -b) makes two global minima of
    L = 1/2 (a b - 1)^2 at x = y = 1 whose midpoint (0, 0) has L = 1/2."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.ones(1, dtype=torch.float64))
        self.b = nn.Parameter(torch.ones(1, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * self.b * x


def test_barrier_of_a_double_well_is_the_closed_form() -> None:
    """Along (1 - 2t)(1, 1): L(t) = 1/2 ((1 - 2t)^2 - 1)^2, with L(0) = L(1) = 0 and maximum 1/2
    at t = 1/2 (a grid point for odd ``points``)."""
    net = _Product()
    plus = trainable_parameters(net)
    minus = {n: -v for n, v in plus.items()}
    x, y = np.ones((1, 1)), np.ones((1, 1))
    t, losses = interpolate(net, plus, minus, x, y, points=21)
    np.testing.assert_allclose(losses, 0.5 * ((1 - 2 * t) ** 2 - 1) ** 2, atol=LOSS_TOL)
    assert barrier(t, losses) == pytest.approx(0.5, abs=LOSS_TOL)


def test_permuted_copies_of_a_trained_net_have_a_barrier() -> None:
    """Permuting hidden units gives the same function (equal endpoint losses, to rounding), but
    the average of the two copies is a different, worse network: a positive barrier (the
    permutation symmetry behind Entezari et al. 2022). Asserted at > 10% of the endpoint loss
    above it, a margin a broken interpolation would not meet by chance."""
    x, y = _data(n=32, k=1)
    net = ArchSpec(depth=1, b_std=0.2, activation="erf").to_torch(8, input_shape=(5,), seed=0, dtype=torch.float64)
    train(net, x, y, TrainSettings(lr=0.5, steps=300))
    theta = trainable_parameters(net)
    perm = torch.roll(torch.arange(8), 3)
    permuted = dict(theta)
    permuted["hidden.0.weight"] = theta["hidden.0.weight"][perm]
    permuted["hidden.0.bias"] = theta["hidden.0.bias"][perm]
    permuted["readout.weight"] = theta["readout.weight"][:, perm]
    t, losses = interpolate(net, theta, permuted, x, y, points=11)
    assert losses[-1] == pytest.approx(losses[0], rel=1e-10)
    assert barrier(t, losses) > 0.1 * losses[0]


def test_plane_centre_shape_and_symmetry() -> None:
    """At the least-squares minimum of a linear model the loss is an even quadratic about the
    centre, so on the exactly antisymmetric grid L(a, b) = L(-a, -b)."""
    x, y = _data()
    net = ArchSpec(depth=0, b_std=0.5, out_dim=2).to_torch(1, input_shape=(5,), seed=0, dtype=torch.float64)
    # the minimum by a long run of GD (convex and well conditioned here)
    train(net, x, y, TrainSettings(lr=0.5, steps=2000))
    centre = trainable_parameters(net)
    d1 = filter_normalized_direction(net, seed=1)
    d2 = filter_normalized_direction(net, seed=2, orthogonal_to=d1)
    a, b, losses = plane(net, centre, d1, d2, x, y, span=(-1, 1), points=7)
    assert a.shape == b.shape == (7,) and losses.shape == (7, 7)
    np.testing.assert_array_equal(a, -a[::-1])
    assert a[3] == 0 and b[3] == 0
    assert abs(losses[3, 3] - _direct_loss(net, centre, x, y)) < LOSS_TOL
    np.testing.assert_allclose(losses, losses[::-1, ::-1], rtol=1e-9)
    assert np.all(losses >= losses[3, 3] - LOSS_TOL)


def test_plane_respects_loss_scale() -> None:
    """OutputScaled modules train on loss_scale * loss; the slice is that objective."""
    x, y = _data(k=1)
    net = ArchSpec(depth=1).to_torch(6, input_shape=(5,), seed=0, alpha=2.0, dtype=torch.float64)
    theta = trainable_parameters(net)
    assert all(not n.startswith("initial.") for n in theta)  # the frozen copy is not theta
    d = filter_normalized_direction(net, seed=0)
    _, _, losses = plane(net, theta, d, d, x, y, points=3, span=(-0.5, 0.5))
    assert abs(losses[1, 1] - _direct_loss(net, theta, x, y)) < LOSS_TOL
    assert loss_at(net, theta, x, y) == pytest.approx(losses[1, 1], abs=LOSS_TOL)


def test_conv_cross_entropy_plane_is_chunk_invariant() -> None:
    """vmap over batched conv weights (and OutputScaled's frozen copy) gives the loop's values."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(10, 6, 2)), np.eye(3)[rng.integers(0, 3, 10)]
    net = ArchSpec(kind="conv1d", depth=2, b_std=0.2, out_dim=3).to_torch(4, input_shape=(6, 2), seed=0, alpha=2.0,
                                                                         dtype=torch.float64)
    theta = trainable_parameters(net)
    d1 = filter_normalized_direction(net, seed=0)
    d2 = filter_normalized_direction(net, seed=1, orthogonal_to=d1)
    _, _, batched = plane(net, theta, d1, d2, x, y, loss="cross_entropy", points=5, chunk_size=8)
    _, _, looped = plane(net, theta, d1, d2, x, y, loss="cross_entropy", points=5, chunk_size=1)
    np.testing.assert_allclose(batched, looped, rtol=LOSS_TOL)
    assert abs(batched[2, 2] - _direct_loss(net, theta, x, y, "cross_entropy")) < LOSS_TOL


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda net, th, x, y: filter_normalized_direction(net, seed=1.5), TypeError, r"seed must be an int; got 1\.5"),
        (lambda net, th, x, y: interpolate(net, {"x": th["readout.weight"]}, th, x, y), ValueError,
         r"theta_a must have the module's trainable parameter names"),
        (lambda net, th, x, y: interpolate(net, th, {**th, "readout.bias": torch.zeros(3)}, x, y), ValueError,
         r"theta_b\['readout\.bias'\] must have shape \(1,\)"),
        (lambda net, th, x, y: interpolate(net, th, th, x, y, loss="hinge"), ValueError,
         r"loss must be one of 'mse', 'cross_entropy', 'logistic', 'squared_hinge'; got 'hinge'"),
        (lambda net, th, x, y: interpolate(net, th, th, x, y, points=1), ValueError, r"points must be an int >= 2; got 1"),
        (lambda net, th, x, y: interpolate(net, th, th, x, y, t_range=(1, 0)), ValueError, r"t_range must be finite with low < high"),
        (lambda net, th, x, y: interpolate(net, th, th, x, y[:3]), ValueError, r"y must have shape \(n, k\) with n = 24"),
        (lambda net, th, x, y: plane(net, th, th, [1.0], x, y), TypeError, r"d2 must be a dict name -> tensor or a flat vector"),
        (lambda net, th, x, y: plane(net, th, th, th, x, y, chunk_size=0), ValueError, r"chunk_size must be an int >= 1; got 0"),
        (lambda net, th, x, y: barrier([0.2, 0.5], [1.0, 2.0]), ValueError, r"t must contain the endpoints 0 and 1"),
        (lambda net, th, x, y: unflat(torch.zeros(3), th), ValueError, r"vector must be 1-D with \d+ entries"),
    ],
)
def test_bad_inputs_name_the_argument(call, error: type, match: str) -> None:  # noqa: ANN001
    x, y = _data(k=1)
    net = ArchSpec(depth=1, b_std=0.1).to_torch(4, input_shape=(5,), seed=0, dtype=torch.float64)
    with pytest.raises(error, match=match):
        call(net, trainable_parameters(net), x, y)
