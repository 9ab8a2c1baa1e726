"""Feature-learning measurements (genlab.empirical.features) against independent computations.

References written out in the test: the last hidden representation recomputed layer by layer in
numpy from the weights and multipliers (not SpecNetwork.features); linear CKA as
tr(K H L H) / sqrt(tr(K H K H) tr(L H L H)) with K = X X^T, L = Y Y^T and an explicit centring
matrix H (Kornblith et al. 2019); the effective rank exp(H(p)) of the normalised singular values
(Roy & Vetterli 2007, the definition in genlab.empirical.features) from the eigenvalues of the
feature covariance rather than an SVD; the first-layer alignment ||A w||^2 / ||A||_F^2 one row at a
time; kernel regression on explicit per-sample-Jacobian NTKs by a direct linear solve. Closed
forms: CKA 1 for frozen or permuted-and-scaled features, effective rank of a known spectrum,
alignment cos^2(theta) for rows at angle theta to w, and ordinary least squares for the NTK
regression of a linear model.

The context is built as genlab.study._cell.run_cell builds it (see tests/empirical/test_kernel_regime.py).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from scipy.special import erf

from genlab.empirical import EmpiricalContext, train
from genlab.settings import TrainSettings
from genlab.empirical import features as measure
from genlab.models import ArchSpec, OutputScaled
from genlab.quantities import PROBE_SIZE
from genlab.tasks import make_task
from tests.empirical.test_kernel_regime import jacobian

#: float64 round-off in products of (<= 272 x 16) feature matrices and their Gram matrices, with
#: a wide margin: 1e-10 relative.
F64_RTOL = 1e-10
#: A quantity equal to 1 (or to a closed form of O(1)) in exact arithmetic, computed through
#: O(1) float64 sums: a few hundred ulps.
F64_EXACT_ATOL = 1e-13
#: Ridgeless kernel regression on a 32 x 32 NTK of condition number kappa <= 1e6 (asserted): the
#: solve's relative error is ~kappa * eps ~ 1e-10 in both genlab's and the reference's solve.
SOLVE_RTOL = 1e-8

RELU = ArchSpec(depth=1, activation="relu", w_std=2**0.5, b_std=0.1)
ACTIVATIONS = {"relu": lambda h: np.maximum(h, 0.0), "erf": erf, "identity": lambda h: h}


# ----------------------------------------------------------------------------- helpers


def _task(n_train: int = 32, n_test: int = 48, d: int = 4):
    return make_task("single_index", seed=0, n_train=n_train, n_test=n_test, d=d, degree=2)


def _context(spec: ArchSpec, width: int, settings: TrainSettings, *, alpha: float | None = None, task=None,
             frozen_hidden: bool = False) -> EmpiricalContext:
    """The cell's EmpiricalContext, as genlab.study._cell.run_cell builds it; ``frozen_hidden``
    stops the hidden layers from training (only the readout moves)."""
    task = _task() if task is None else task
    module = spec.to_torch(width, input_shape=task.input_shape, seed=settings.seed, alpha=alpha, dtype=torch.float64)
    if frozen_hidden:
        _net(module).hidden.requires_grad_(False)
    module0 = copy.deepcopy(module)
    run = train(module, task.x_train, task.y_train, settings, x_test=task.x_test, y_test=task.y_test)
    return EmpiricalContext(task.x_train, task.y_train, task.x_test, task.y_test, task.meta["kind"], settings,
                            module0, module, run, meta=dict(task.meta))


def _net(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if isinstance(module, OutputScaled) else module


def hidden_numpy(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The last hidden representation of an fc SpecNetwork, recomputed in numpy:
    h <- act(c_w h W^T + c_b b) for each hidden layer."""
    net = _net(module)
    act = ACTIVATIONS[net.spec.activation]
    h = np.asarray(x, dtype=np.float64)
    for layer in net.hidden:
        w = layer.weight.detach().numpy()
        pre = layer.weight_multiplier * h @ w.T
        if layer.bias is not None:
            pre = pre + layer.bias_multiplier * layer.bias.detach().numpy()
        h = act(pre)
    return h


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """tr(K H L H) / sqrt(tr(K H K H) tr(L H L H)), K = x x^T, L = y y^T, H = I - 11^T/n."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = x @ x.T, y @ y.T
    return float(np.trace(k @ h @ l @ h) / np.sqrt(np.trace(k @ h @ k @ h) * np.trace(l @ h @ l @ h)))


def effective_rank(features: np.ndarray) -> float:
    """exp(-sum_i p_i log p_i), p = s / sum(s), s the singular values of the column-centred
    features, here the square roots of the eigenvalues of Xc^T Xc."""
    xc = features - features.mean(axis=0)
    s = np.sqrt(np.clip(np.linalg.eigvalsh(xc.T @ xc), 0.0, None))
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def row_alignment(a: np.ndarray, w: np.ndarray) -> float:
    """sum_j <a_j, w>^2 / sum_j ||a_j||^2 over the rows a_j (hidden units) of the first layer."""
    return float(sum(float(row @ w) ** 2 for row in a) / sum(float(row @ row) for row in a))


def _one_step_context(spec: ArchSpec, width: int, x: np.ndarray, y: np.ndarray, *, meta: dict | None = None) -> EmpiricalContext:
    """A context after one tiny GD step on (x, y), test set = train set, whose trained module the
    test then sets by hand (the measurement reads only the weights and the probe)."""
    module = spec.to_torch(width, input_shape=x.shape[1:], seed=0, dtype=torch.float64)
    module0 = copy.deepcopy(module)
    settings = TrainSettings(lr=1e-3, steps=1)
    run = train(module, x, y, settings)
    return EmpiricalContext(x, y, x, y, "regression", settings, module0, module, run, meta=meta or {})


# ----------------------------------------------------------------------------- feature_cka


@pytest.mark.parametrize(("depth", "alpha"), [(1, None), (2, None), (1, 0.5)])
def test_feature_cka_matches_a_handwritten_linear_cka_on_the_probe(depth: int, alpha: float | None) -> None:
    """Linear CKA between the numpy-recomputed last hidden layer at init and after training, on
    the first PROBE_SIZE training points (n_train > PROBE_SIZE: the whole set would differ)."""
    spec = ArchSpec(depth=depth, activation="relu", w_std=2**0.5, b_std=0.1)
    task = _task(n_train=PROBE_SIZE + 16)
    ctx = _context(spec, 16, TrainSettings(lr=1.0, steps=60), alpha=alpha, task=task)
    probe = task.x_train[:PROBE_SIZE]
    expected = linear_cka(hidden_numpy(ctx.module0, probe), hidden_numpy(ctx.module, probe))
    assert expected < 0.999  # the features moved: the comparison is not 1 against 1
    np.testing.assert_allclose(measure.feature_cka(ctx).value, expected, rtol=F64_RTOL)
    whole = linear_cka(hidden_numpy(ctx.module0, task.x_train), hidden_numpy(ctx.module, task.x_train))
    assert abs(whole - expected) > 1e3 * F64_RTOL


def test_feature_cka_is_one_when_the_hidden_layer_does_not_train() -> None:
    """Only the readout trains: the hidden representation is unchanged and its CKA with itself is 1,
    although the network moved."""
    ctx = _context(RELU, 16, TrainSettings(lr=1.0, steps=30), frozen_hidden=True)
    assert ctx.run.train_loss[-1] < 0.9 * ctx.run.train_loss[0]
    assert abs(measure.feature_cka(ctx).value - 1) < F64_EXACT_ATOL


def test_feature_cka_is_invariant_to_permuting_and_scaling_the_hidden_units() -> None:
    """Permuting the hidden units and scaling them by 3 (W -> 3 P W, b -> 3 P b; ReLU commutes with
    both) maps the features to 3 Phi P^T: linear CKA is invariant to orthogonal maps and isotropic
    scaling, so it is 1 although every feature column changed."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 4))
    ctx = _one_step_context(RELU, 16, x, x[:, :1])
    layer = _net(ctx.module).hidden[0]
    perm = rng.permutation(16)
    with torch.no_grad():
        layer.weight.copy_(3 * _net(ctx.module0).hidden[0].weight[perm])
        layer.bias.copy_(3 * _net(ctx.module0).hidden[0].bias[perm])
    before, after = hidden_numpy(ctx.module0, x), hidden_numpy(ctx.module, x)
    assert np.abs(after - before).max() > 1.0
    assert abs(measure.feature_cka(ctx).value - 1) < F64_EXACT_ATOL


# ----------------------------------------------------------------------------- feature_rank


def test_feature_rank_is_exp_entropy_of_the_normalised_singular_values() -> None:
    task = _task(n_train=PROBE_SIZE + 16)
    ctx = _context(RELU, 16, TrainSettings(lr=1.0, steps=60), task=task)
    probe = hidden_numpy(ctx.module, task.x_train[:PROBE_SIZE])
    s = np.linalg.svd(probe - probe.mean(0), compute_uv=False)
    # Condition number <= 1e2, so the eigenvalue route (squaring it) loses <= 1e-12 relative in s.
    assert s.min() > 1e-2 * s.max()
    expected = effective_rank(probe)
    np.testing.assert_allclose(measure.feature_rank(ctx).value, expected, rtol=F64_RTOL)
    assert abs(effective_rank(hidden_numpy(ctx.module, task.x_train)) - expected) > 1e3 * F64_RTOL


@pytest.mark.parametrize(("singular", "expected"), [
    ((1.0, 1.0, 1.0), 3.0),  # d equal singular values: rank d
    ((1.0, 2.0), math.exp(-(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3))),  # p = (1/3, 2/3): 1.8899
    ((1.0, 0.0), 1.0),  # rank 1
])
def test_feature_rank_of_a_known_singular_spectrum(singular: tuple[float, ...], expected: float) -> None:
    """Identity activation, inputs +-e_i (centred, X^T X = 2 I) and a first layer c_w W = diag(s):
    the centred features X diag(s) have singular values sqrt(2) s, so the effective rank is
    exp(H(s / sum s)). (1, 2) separates this definition from the participation ratio of the
    singular values (1.8) or of their squares (25/17 = 1.47)."""
    d = len(singular)
    x = np.concatenate([np.eye(d), -np.eye(d)])
    spec = ArchSpec(depth=1, activation="identity", b_std=0.3)
    ctx = _one_step_context(spec, d, x, x[:, :1])
    layer = _net(ctx.module).hidden[0]
    with torch.no_grad():
        layer.weight.copy_(torch.diag(torch.tensor(singular, dtype=torch.float64)) / layer.weight_multiplier)
    assert abs(measure.feature_rank(ctx).value - expected) < F64_EXACT_ATOL


# ----------------------------------------------------------------------------- first_layer_alignment


def test_first_layer_alignment_matches_rows_projected_on_the_task_direction() -> None:
    ctx = _context(RELU, 16, TrainSettings(lr=1.0, steps=60))
    layer = _net(ctx.module).hidden[0]
    w = np.asarray(ctx.meta["w"])
    expected = row_alignment(layer.weight_multiplier * layer.weight.detach().numpy(), w / np.linalg.norm(w))
    init = row_alignment(_net(ctx.module0).hidden[0].weight.detach().numpy(), w / np.linalg.norm(w))
    assert abs(expected - init) > 1e-3  # training turned the first layer: the value is not the init one
    np.testing.assert_allclose(measure.first_layer_alignment(ctx).value, expected, rtol=F64_RTOL)


def test_first_layer_alignment_estimates_the_direction_without_meta() -> None:
    """Without meta["w"] the direction is the top eigenvector of a quadratic fit to the test
    targets. Clean single-index degree-2 targets are exactly (<w, x>^2 - 1)/sqrt(2), so the fit
    recovers +-w to round-off and the alignment is the one with the true w."""
    ctx = _context(RELU, 16, TrainSettings(lr=1.0, steps=60))
    with_meta = measure.first_layer_alignment(ctx).value
    blind = EmpiricalContext(ctx.x_train, ctx.y_train, ctx.x_test, ctx.y_test, ctx.kind, ctx.settings, ctx.module0,
                             ctx.module, ctx.run)
    np.testing.assert_allclose(measure.first_layer_alignment(blind).value, with_meta, rtol=F64_RTOL)


@pytest.mark.parametrize("theta", [0.0, 0.4, math.pi / 2])
def test_first_layer_alignment_of_rows_at_a_fixed_angle_to_w(theta: float) -> None:
    """Rows a_j = r_j (cos(theta) w + sin(theta) u_j) with u_j unit vectors orthogonal to w have
    <a_j, w>^2 / ||a_j||^2 = cos^2(theta) each, so the alignment is cos^2(theta) for any r_j."""
    d, width = 5, 12
    rng = np.random.default_rng(2)
    w = rng.normal(size=d)
    w /= np.linalg.norm(w)
    u = rng.normal(size=(width, d))
    u -= np.outer(u @ w, w)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    rows = rng.uniform(0.5, 2.0, size=(width, 1)) * (math.cos(theta) * w + math.sin(theta) * u)
    x = rng.normal(size=(30, d))
    ctx = _one_step_context(RELU, width, x, x[:, :1], meta={"w": 3 * w})  # meta's w need not be unit
    layer = _net(ctx.module).hidden[0]
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(rows) / layer.weight_multiplier)
    assert abs(measure.first_layer_alignment(ctx).value - math.cos(theta) ** 2) < F64_EXACT_ATOL


def test_first_layer_alignment_is_none_without_a_first_layer() -> None:
    ctx = _context(ArchSpec(depth=0, b_std=0.1), 1, TrainSettings(lr=0.1, steps=5))
    assert measure.first_layer_alignment(ctx).value is None


# ----------------------------------------------------------------------------- kernel test MSE


def _ntk(module: torch.nn.Module, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    j1, j2 = jacobian(module, x1), jacobian(module, x2)
    return np.einsum("iop,jop->ij", j1, j2)


def test_init_and_after_kernel_test_mse_are_ntk_regression_on_explicit_kernels() -> None:
    """Ridgeless kernel regression K(X*, X) K(X, X)^-1 y by np.linalg.solve, with both blocks from
    explicit per-sample Jacobians at init and after training, then mean ||f - y||^2 on the test set."""
    ctx = _context(RELU, 16, TrainSettings(lr=1.0, steps=60))
    x, y, xt, yt = ctx.x_train, ctx.y_train, ctx.x_test, ctx.y_test
    values = {}
    for which, module in (("init", ctx.module0), ("after", ctx.module)):
        k = _ntk(module, x, x)
        assert np.linalg.cond(k) < 1e6  # the SOLVE_RTOL premise (P = 97 parameters > n = 32)
        predictions = _ntk(module, xt, x) @ np.linalg.solve(k, y)
        values[which] = float(np.mean(np.sum((predictions - yt) ** 2, axis=1)))
    assert abs(values["after"] - values["init"]) > 1e-2 * values["init"]  # the kernel changed
    np.testing.assert_allclose(measure.init_kernel_test_mse(ctx).value, values["init"], rtol=SOLVE_RTOL)
    np.testing.assert_allclose(measure.after_kernel_test_mse(ctx).value, values["after"], rtol=SOLVE_RTOL)


def test_kernel_test_mse_of_a_linear_model_is_least_squares_with_an_intercept() -> None:
    """A linear model's NTK c_w^2 X X^T + c_b^2 is the linear kernel of the features (c_w x, c_b):
    its ridgeless regression is the least-squares fit of y on (1, x) whatever c_w, c_b > 0, and the
    NTK does not move, so init and after kernels give the same test MSE."""
    ctx = _context(ArchSpec(depth=0, b_std=0.5), 1, TrainSettings(lr=0.5, steps=20))
    design = np.concatenate([np.ones((len(ctx.x_train), 1)), ctx.x_train], axis=1)
    coef = np.linalg.lstsq(design, ctx.y_train, rcond=None)[0]
    predictions = np.concatenate([np.ones((len(ctx.x_test), 1)), ctx.x_test], axis=1) @ coef
    expected = float(np.mean(np.sum((predictions - ctx.y_test) ** 2, axis=1)))
    np.testing.assert_allclose(measure.init_kernel_test_mse(ctx).value, expected, rtol=SOLVE_RTOL)
    np.testing.assert_allclose(measure.after_kernel_test_mse(ctx).value, expected, rtol=SOLVE_RTOL)


# ----------------------------------------------------------------------------- diverged runs


def test_a_diverged_run_has_no_feature_measurement_after_training() -> None:
    ctx = _context(RELU, 16, TrainSettings(lr=1e3, steps=20))
    assert ctx.run.diverged
    for quantity in (measure.feature_cka, measure.feature_rank, measure.after_kernel_test_mse,
                     measure.first_layer_alignment):
        assert quantity(ctx).value is None, quantity.__name__
    assert np.isfinite(measure.init_kernel_test_mse(ctx).value)


def test_collapsed_features_have_rank_zero_and_no_cka() -> None:
    """Every ReLU unit dead after training (forced here by a large negative bias): the centred
    representation is the zero matrix, so its rank is 0 and CKA (which divides by its variance)
    is undefined; before the fix linear_cka raised ValueError and failed the whole cell."""
    ctx = _context(RELU, 8, TrainSettings(lr=0.1, steps=5))
    with torch.no_grad():
        _net(ctx.module).hidden[0].bias.fill_(-1e3)
    assert measure.feature_cka(ctx).value is None
    assert measure.feature_rank(ctx).value == 0.0  # the literal returned for collapsed features
    constant = np.full((6, 3), 0.1) + np.array([0.3, -2.0, 7.0])  # constant columns, rounding in the mean
    assert measure.effective_rank(constant) == 0.0
