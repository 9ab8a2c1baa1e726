"""Landscape quantities measured through a cell, each against an independent computation: the
trajectory of an explicit GD loop written out here, the loss evaluated here at interpolated and
plane points, the explicit Hessian (torch.func.hessian) and per-sample Hessians of the objective
L = 1/(2n) sum_i ||f(x_i) - y_i||^2, and a double well whose interpolation barrier is known in
closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, hessian

from genlab.empirical import EmpiricalContext, TrainingRun
from genlab.settings import TrainSettings
from genlab.empirical import landscape
from genlab.empirical._slices import filter_normalized_direction
from genlab.study._cell import build_cell, run_cell

CELL = {
    "task": {"name": "teacher_student", "seed": 0, "n_train": 32, "n_test": 16, "d": 4},
    "model": {"kind": "fc", "depth": 1, "activation": "gelu", "width": 16, "b_std": 0.1},
    "train": {"optimizer": "gd", "lr": 0.5, "steps": 60, "measure_every": 10},
    "quantities": ["path_length", "distance_from_init", "trajectory_pca_variance", "train_loss"],
}

#: Two float64 runs of the same GD recursion (torch.optim.SGD's add_ vs. the explicit loop here)
#: may round differently per step; over 60 steps on a smooth loss that stays far below 1e-12
#: (measured: bit-identical); norms and sums of 7 such snapshots add ~1e-15.
TRAJECTORY_RTOL = 1e-9
#: Loss of one parameter vector: vmap/functional_call in genlab vs. the plain forward here, the
#: same float64 operations in another order (measured 4e-16 relative).
LOSS_RTOL = 1e-10
#: The ARPACK tolerance the cell's sharpness and non-uniformity are computed at (relative).
EIGEN_RTOL = landscape.SHARPNESS_TOL


def _flat_parameters(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters() if p.requires_grad]).clone()


def _objective(module: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """theta -> 1/(2n) sum_i ||f(x_i; theta) - y_i||^2, written out here (no genlab loss code)."""
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    shapes = [p.shape for n, p in module.named_parameters() if p.requires_grad]

    def loss(theta: torch.Tensor) -> torch.Tensor:
        params, start = {}, 0
        for name, shape in zip(names, shapes):
            size = math.prod(shape)
            params[name] = theta[start : start + size].reshape(shape)
            start += size
        return 0.5 * ((functional_call(module, params, (x,)) - y) ** 2).sum(dim=1).mean()

    return loss


def _setup(config: dict) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The cell's initial network and float64 training data, rebuilt from its config."""
    task, _, _, _, _, module = build_cell(config)
    return module, torch.as_tensor(task.x_train), torch.as_tensor(task.y_train)


def _explicit_gd(config: dict, record_every: int) -> np.ndarray:
    """Full-batch GD theta <- theta - lr grad L(theta) from the cell's init, by autograd here;
    the snapshots at steps 0, record_every, ..., steps."""
    module, x, y = _setup(config)
    loss, lr = _objective(module, x, y), config["train"]["lr"]
    theta = _flat_parameters(module)
    snapshots = [theta.clone()]
    for step in range(1, config["train"]["steps"] + 1):
        point = theta.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(loss(point), point)
        theta = theta - lr * gradient
        if step % record_every == 0:
            snapshots.append(theta.clone())
    return torch.stack(snapshots).numpy()


def test_trajectory_quantities_from_a_real_run() -> None:
    """Path length, distance from init and top-2 PCA share of the snapshots at steps 0, 10, ...,
    60, against the same GD run written out here: sum of the explicit step norms, the norm of the
    explicit end-minus-start difference, and the top-2 share from the eigenvalues of the centred
    snapshots' Gram matrix (not an SVD). A top-1 share (0.953 here) or a path over other steps
    would fail."""
    out = run_cell(CELL)
    values = {row.quantity: row.empirical for row in out.rows}
    snapshots = _explicit_gd(CELL, record_every=10)
    assert out.arrays["trajectory_step"].tolist() == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]  # float(step): exact
    scale = np.abs(snapshots).max()
    np.testing.assert_allclose(out.arrays["trajectory"], snapshots, rtol=0, atol=TRAJECTORY_RTOL * scale)

    path = sum(float(np.linalg.norm(snapshots[k + 1] - snapshots[k])) for k in range(len(snapshots) - 1))
    distance = float(np.linalg.norm(snapshots[-1] - snapshots[0]))
    centred = snapshots - snapshots.mean(axis=0)
    gram_eigenvalues = np.sort(np.linalg.eigvalsh(centred @ centred.T))[::-1]
    share = float(gram_eigenvalues[:2].sum() / gram_eigenvalues.sum())
    assert values["path_length"] == pytest.approx(path, rel=TRAJECTORY_RTOL)
    assert values["distance_from_init"] == pytest.approx(distance, rel=TRAJECTORY_RTOL)
    # eigvalsh of a 7x7 Gram matrix vs. genlab's SVD: rounding of ~1e-15 relative to the trace
    assert values["trajectory_pca_variance"] == pytest.approx(share, abs=1e-12)
    assert path > distance * (1 + 1e-3)  # this path bends: the two quantities are told apart


def test_snapshot_budget_keeps_every_kth_step(monkeypatch) -> None:
    """Room for 3 snapshots, 11 measured steps (0, 10, ..., 100): every ceil(11 / 3) = 4th one,
    plus the last."""
    from genlab.models import ArchSpec

    net = ArchSpec(depth=1).to_torch(8, input_shape=(3,), seed=0)
    size = sum(p.numel() for p in net.parameters())
    monkeypatch.setattr(landscape, "SNAPSHOT_BUDGET", 3 * size)
    settings = TrainSettings(steps=100, measure_every=10)
    hook = landscape.trajectory_hook(net, np.zeros((4, 3)), np.zeros((4, 1)), settings)
    kept = [step for step in range(0, 101, 10) if hook(step, net)]
    assert kept == [0, 40, 80, 100]


class _Product(nn.Module):
    """f(x) = a b x; at x = y = 1 the loss is L = 1/2 (a b - 1)^2, with minima on a b = 1 (both
    signs of a and b: a double well along a line through the origin)."""

    def __init__(self, a: float, b: float) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.full((1,), a, dtype=torch.float64))
        self.b = nn.Parameter(torch.full((1,), b, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.a * self.b * x


def test_interpolation_barrier_of_a_double_well_is_the_closed_form() -> None:
    """From init (1, 1) (L = 0) to the 'trained' (-1.5, -1) (L = 1/8): along theta(t) the loss
    is the quartic L(t) = 1/2 ((1 - 2.5 t)(1 - 2 t) - 1)^2, evaluated here with numpy; the barrier
    is max_t [L(t) - ((1 - t) L(0) + t L(1))] over the line's grid (0.455 at t = 11/24). The
    endpoints differ, so a barrier without the chord (0.51) or above one endpoint only (0.39)
    would fail."""
    x = y = np.ones((1, 1))
    settings = TrainSettings(steps=1)
    run = TrainingRun(steps=np.array([0]), train_loss=np.array([0.0]), test_loss=None, diverged=False, final_step=0)
    ctx = EmpiricalContext(x, y, x, y, "regression", settings, _Product(1.0, 1.0), _Product(-1.5, -1.0), run)
    measured = landscape.interpolation_barrier(ctx)
    t = np.asarray(measured.curve.x)
    np.testing.assert_allclose(t, np.linspace(0.0, 1.0, landscape.LINE_POINTS), rtol=0, atol=1e-15)
    closed_form = 0.5 * ((1 - 2.5 * t) * (1 - 2 * t) - 1) ** 2
    chord = (1 - t) * closed_form[0] + t * closed_form[-1]
    # a few float64 roundings of O(1) numbers
    np.testing.assert_allclose(measured.curve.y, closed_form, rtol=0, atol=1e-14)
    assert measured.value == pytest.approx(float(np.max(closed_form - chord)), abs=1e-14)
    assert abs(measured.value - (closed_form.max() - closed_form[0])) > 0.01
    assert abs(measured.value - (closed_form.max() - closed_form[-1])) > 0.01


SHAPE_CELL = {
    "task": {"name": "teacher_student", "seed": 0, "n_train": 32, "n_test": 16, "d": 4},
    "model": {"kind": "fc", "depth": 1, "activation": "gelu", "width": 16, "b_std": 0.1},
    "train": {"optimizer": "sgd", "lr": 0.3, "steps": 60, "batch_size": 8, "measure_every": 20},
    "quantities": ["sharpness", "nonuniformity", "sgd_stability", "spectral_density", "interpolation_barrier",
                   "loss_plane", "train_loss", "train_loss_curve", "trajectory_pca_variance"],
}


def _stability_tolerance(lr: float, noise: float, a: float, s: float) -> float:
    """|d factor| for relative errors EIGEN_RTOL in a and in s, factor = (1 - lr a)^2 + noise s^2."""
    return 2 * lr * abs(1 - lr * a) * a * EIGEN_RTOL + 2 * noise * s**2 * EIGEN_RTOL + 1e-12


def test_landscape_shape_quantities_of_a_real_sgd_run() -> None:
    """At the trained parameters (the cell's last snapshot; its first is the rebuilt init, copied):
    the sharpness is the top eigenvalue of the explicit Hessian, the non-uniformity is
    sqrt(lambda_max((1/n) sum_i H_i^2 - H^2)) from the explicit per-sample Hessians, the stability
    factor is Wu et al.'s formula in those exact values, the spectral-density value is the SLQ
    start vectors' exact spectral mass above 0.1 lambda_max, the init-to-end line is the loss
    evaluated here at (1 - t) theta_0 + t theta_T with its barrier the explicit max above the
    chord, and the plane's points are the loss here at theta_T + a d1 + b d2."""
    out = run_cell(SHAPE_CELL)
    theory = {row.quantity: row.theory for row in out.rows}
    values = {row.quantity: row.empirical for row in out.rows}
    lr, n, batch = 0.3, 32, 8
    module, x, y = _setup(SHAPE_CELL)
    loss = _objective(module, x, y)
    snapshots = out.arrays["trajectory"]
    # the first snapshot is a float64 copy of the initial parameters: exact
    np.testing.assert_array_equal(snapshots[0], _flat_parameters(module).numpy())
    theta0, theta_end = torch.as_tensor(snapshots[0]), torch.as_tensor(snapshots[-1])

    # curvature at the end, from explicit Hessians
    h = hessian(loss)(theta_end)
    eigenvalues, eigenvectors = np.linalg.eigh(h.numpy())
    a_exact = float(eigenvalues[-1])
    per_sample = torch.stack([hessian(_objective(module, x[i : i + 1], y[i : i + 1]))(theta_end) for i in range(n)])
    covariance = torch.einsum("nij,njk->ik", per_sample, per_sample) / n - h @ h
    s_exact = float(torch.linalg.eigvalsh(covariance)[-1].sqrt())
    assert values["sharpness"] == pytest.approx(a_exact, rel=EIGEN_RTOL)
    assert values["nonuniformity"] == pytest.approx(s_exact, rel=EIGEN_RTOL)
    noise = lr**2 * (n - batch) / (batch * (n - 1))
    expected = (1 - lr * a_exact) ** 2 + noise * s_exact**2
    assert values["sgd_stability"] == pytest.approx(expected, abs=_stability_tolerance(lr, noise, a_exact, s_exact))
    # the theory side: the constant bound 1.0 genlab.theory.landscape returns, and s_max
    assert theory["sgd_stability"] == 1.0
    assert theory["nonuniformity"] == pytest.approx(np.sqrt(batch * (n - 1) / (n - batch)) / lr, rel=1e-12)

    # SLQ: 4 standard-normal starts v (default_rng(train.seed), as slq_nodes draws them) and 60
    # Lanczos steps; the value is the quadrature weight above 0.1 x the top node, whose exact
    # counterpart is mean_v sum_{lambda_i > 0.1 lambda_max} (u_i . v)^2 / ||v||^2. The nearest
    # eigenvalues sit 7% from the threshold, so no Ritz value crosses it; the quadrature masses
    # then agree to rounding (measured 2e-16). The eigenvalue count alone (11/97 = 0.113) differs
    # from this estimate (0.137) by more than the tolerance.
    rng = np.random.default_rng(0)
    above = eigenvalues > landscape.OUTLIER_FRACTION * a_exact
    masses = []
    for _ in range(landscape.DENSITY_VECTORS):
        v = rng.standard_normal(eigenvalues.size)
        masses.append(float(np.sum((eigenvectors.T @ v)[above] ** 2) / (v @ v)))
    assert values["spectral_density"] == pytest.approx(np.mean(masses), abs=1e-6)
    density = out.curves["spectral_density"]
    assert np.trapezoid(density["empirical"], density["empirical_eigenvalue"]) == pytest.approx(1.0, abs=1e-9)
    # The broadened density's support reaches the sharpness (the top Ritz value converges first).
    assert max(density["empirical_eigenvalue"]) >= a_exact * (1 - EIGEN_RTOL)

    # the init-to-end line, evaluated here
    line = out.curves["interpolation_barrier"]
    t = np.asarray(line["empirical_t"])
    np.testing.assert_allclose(t, np.linspace(0.0, 1.0, landscape.LINE_POINTS), rtol=0, atol=1e-15)
    along = np.array([float(loss((1 - tk) * theta0 + tk * theta_end)) for tk in t])
    np.testing.assert_allclose(line["empirical"], along, rtol=LOSS_RTOL)
    chord = (1 - t) * along[0] + t * along[-1]
    assert values["interpolation_barrier"] == pytest.approx(float(np.max(along - chord)), abs=LOSS_RTOL * along.max())
    # here the line is convex (the interior is below the chord by up to 0.09): barrier 0
    assert np.all((along - chord)[1:-1] < -1e-3)
    losses = out.curves["train_loss_curve"]["empirical"]
    assert losses[0] == pytest.approx(along[0], rel=LOSS_RTOL) and losses[-1] == pytest.approx(along[-1], rel=LOSS_RTOL)

    # the plane: centre, and two off-centre points (which also pin the axes' orientation)
    plane = out.arrays["loss_plane"]
    a_grid, b_grid = out.arrays["loss_plane_a"], out.arrays["loss_plane_b"]
    centre = landscape.PLANE_POINTS // 2
    assert plane.shape == (landscape.PLANE_POINTS, landscape.PLANE_POINTS)
    assert plane[centre, centre] == pytest.approx(along[-1], rel=LOSS_RTOL)
    trained = _setup(SHAPE_CELL)[0]
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(theta_end, trained.parameters())
    d1 = filter_normalized_direction(trained, seed=0)
    d2 = filter_normalized_direction(trained, seed=1, orthogonal_to=d1)
    u, w = (torch.cat([d[name].reshape(-1) for name, _ in trained.named_parameters()]) for d in (d1, d2))
    for i, j in ((0, 0), (0, landscape.PLANE_POINTS - 1), (3, centre)):
        point = theta_end + float(a_grid[i]) * u + float(b_grid[j]) * w
        assert plane[i, j] == pytest.approx(float(loss(point)), rel=LOSS_RTOL), (i, j)
    assert values["loss_plane"] == pytest.approx(plane.mean() - plane[centre, centre], rel=1e-10)


def test_gd_stability_factor_is_the_eos_quadratic_factor() -> None:
    """At full batch the noise term vanishes: (1 - lr a)^2 with a the top eigenvalue of the
    explicit Hessian at the end of the same GD run written out here; no non-uniformity bound."""
    cell = {**SHAPE_CELL, "train": {"optimizer": "gd", "lr": 0.3, "steps": 40, "measure_every": 20},
            "quantities": ["sharpness", "sgd_stability", "nonuniformity"]}
    out = run_cell(cell)
    theory = {row.quantity: row.theory for row in out.rows}
    values = {row.quantity: row.empirical for row in out.rows}
    module, x, y = _setup(cell)
    theta_end = torch.as_tensor(_explicit_gd(cell, record_every=40)[-1])
    a_exact = float(torch.linalg.eigvalsh(hessian(_objective(module, x, y))(theta_end))[-1])
    assert values["sharpness"] == pytest.approx(a_exact, rel=EIGEN_RTOL)
    expected = (1 - 0.3 * a_exact) ** 2
    assert values["sgd_stability"] == pytest.approx(expected, abs=_stability_tolerance(0.3, 0.0, a_exact, 0.0))
    # no bound at full batch (None), and the constant bound 1.0 of genlab.theory.landscape
    assert theory["nonuniformity"] is None and theory["sgd_stability"] == 1.0
