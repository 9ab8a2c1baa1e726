"""Kernel-regime measurements (genlab.empirical.kernel_regime) against independent computations.

Every reference here is written out in the test: the empirical NTK from per-sample Jacobians
taken one sample and one output at a time with ``torch.autograd.grad`` (not genlab.kernels),
the centred alignment with an explicit centring matrix H, the weight change from the parameters
one tensor at a time, and the linearized model as explicit gradient descent on the first-order
Taylor model in numpy. Closed forms on linear models (constant NTK, alignment 1, one GD step,
network equal to its linearization) check the measurements where the answer is known exactly.

The context is built as genlab.study._cell.run_cell builds it: the task from make_task, the
network from ArchSpec.to_torch(width, seed=settings.seed, alpha=alpha), a deepcopy at init,
genlab.empirical.train, then EmpiricalContext(..., meta=task.meta). Everything is float64.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch
from torch import nn

from genlab.empirical import EmpiricalContext, train
from genlab.settings import TrainSettings
from genlab.empirical import kernel_regime as measure
from genlab.models import ArchSpec
from genlab.quantities import PROBE_SIZE
from genlab.tasks import make_task

#: float64 round-off of a kernel built from ~1e2-1e3 parameters and <= 256 samples (sums of
#: ~1e3 products, each with relative error ~1e-16), with a wide margin: 1e-10 relative.
F64_KERNEL_RTOL = 1e-10
#: A quantity that is exactly 0 in exact arithmetic, computed as a difference of O(1) float64
#: numbers: a few hundred ulps (1e-13) allowed.
F64_ZERO_ATOL = 1e-13
#: The linearized model trained for <= 100 float64 steps along two routes (genlab's closed form
#: or torch.func.jvp training vs the explicit numpy GD below): both are stable linear recursions,
#: so round-off stays ~1e-13 relative; 1e-8 leaves a wide margin.
LINEAR_MODEL_RTOL = 1e-8

RELU = ArchSpec(depth=1, activation="relu", w_std=2**0.5, b_std=0.1)
LINEAR = ArchSpec(depth=0, b_std=0.5)  # f(x) = (w_std / sqrt(d)) <W, x> + b_std b: a linear model


# ----------------------------------------------------------------------------- helpers


def _task(n_train: int = 32, n_test: int = 48, d: int = 4):
    return make_task("single_index", seed=0, n_train=n_train, n_test=n_test, d=d, degree=2)


def _context(
    spec: ArchSpec,
    width: int,
    settings: TrainSettings,
    *,
    alpha: float | None = None,
    task=None,
    hooks: Callable[[nn.Module, object], Sequence] | None = None,
) -> EmpiricalContext:
    """The cell's EmpiricalContext, as genlab.study._cell.run_cell builds it."""
    task = _task() if task is None else task
    module = spec.to_torch(width, input_shape=task.input_shape, seed=settings.seed, alpha=alpha, dtype=torch.float64)
    module0 = copy.deepcopy(module)
    run = train(module, task.x_train, task.y_train, settings, x_test=task.x_test, y_test=task.y_test,
                hooks=[] if hooks is None else hooks(module, task))
    return EmpiricalContext(task.x_train, task.y_train, task.x_test, task.y_test, task.meta["kind"], settings,
                            module0, module, run, meta=dict(task.meta))


def _trained(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(name, p) for name, p in module.named_parameters() if p.requires_grad]


def jacobian(module: nn.Module, x: np.ndarray) -> np.ndarray:
    """Per-sample Jacobian (n, K, P) of the outputs w.r.t. the trained parameters, one sample and
    one output at a time with torch.autograd.grad."""
    params = [p for _, p in _trained(module)]
    inputs = torch.as_tensor(x, dtype=torch.float64)
    rows = []
    for i in range(len(inputs)):
        out = module(inputs[i : i + 1]).reshape(-1)
        per_output = []
        for o in range(out.numel()):
            grads = torch.autograd.grad(out[o], params, retain_graph=True, allow_unused=True)
            per_output.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for g, p in zip(grads, params)]))
        rows.append(torch.stack(per_output))
    return torch.stack(rows).detach().numpy()


def explicit_ntk(module: nn.Module, x: np.ndarray) -> np.ndarray:
    """Theta[i, j] = sum_o sum_p J[i, o, p] J[j, o, p]."""
    j = jacobian(module, x)
    return np.einsum("iop,jop->ij", j, j)


def centered_alignment(kernel: np.ndarray, y: np.ndarray) -> float:
    """Cortes, Mohri & Rostamizadeh 2012: <H K H, H Y Y^T H>_F / (||H K H||_F ||H Y Y^T H||_F),
    H = I - 11^T / n, written with the explicit matrices."""
    n = kernel.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    kc, lc = h @ kernel @ h, h @ (y @ y.T) @ h
    return float(np.sum(kc * lc) / (np.linalg.norm(kc) * np.linalg.norm(lc)))


def _outputs(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.as_tensor(x, dtype=torch.float64)).numpy()


def explicit_linearized_outputs(ctx: EmpiricalContext, x: np.ndarray) -> np.ndarray:
    """Outputs on ``x`` of the first-order Taylor model f0(x) + J0(x) (theta - theta0), theta
    trained by explicit full-batch heavy-ball GD in numpy on c * mean 1/2 ||f - y||^2 (c the loss
    scale 1/alpha^2 of an OutputScaled net, else 1), as torch.optim.SGD does: buf <- mu buf + g
    (buf = g at the first step), theta <- theta - lr buf."""
    s = ctx.settings
    assert s.optimizer == "gd" and s.schedule == "constant" and s.weight_decay == 0
    scale = float(getattr(ctx.module0, "loss_scale", 1.0))
    j_train, j_x = jacobian(ctx.module0, ctx.x_train), jacobian(ctx.module0, x)  # (n, K, P)
    f0_train, f0_x = _outputs(ctx.module0, ctx.x_train), _outputs(ctx.module0, x)
    n = len(ctx.x_train)
    delta = np.zeros(j_train.shape[2])  # theta - theta0
    buf = None
    for _ in range(ctx.run.final_step):
        residual = f0_train + np.einsum("iop,p->io", j_train, delta) - ctx.y_train
        grad = scale * np.einsum("iop,io->p", j_train, residual) / n
        buf = grad if buf is None else s.momentum * buf + grad
        delta = delta - s.lr * buf
    return f0_x + np.einsum("iop,p->io", j_x, delta)


# ----------------------------------------------------------------------------- ntk_drift


@pytest.mark.parametrize("alpha", [None, 0.5])
def test_ntk_drift_equals_the_relative_change_of_the_explicit_ntk_on_the_probe(alpha: float | None) -> None:
    """||Theta_T - Theta_0||_F / ||Theta_0||_F with both kernels from explicit per-sample Jacobians
    on the first PROBE_SIZE training points. n_train > PROBE_SIZE, so a kernel taken on the whole
    training set would differ; width 16 and lr 1 move the kernel by O(1), so a drift near 0 fails."""
    task = _task(n_train=PROBE_SIZE + 16)
    ctx = _context(RELU, 16, TrainSettings(lr=1.0, steps=60), alpha=alpha, task=task)
    whole0, whole1 = explicit_ntk(ctx.module0, task.x_train), explicit_ntk(ctx.module, task.x_train)
    k0, k1 = whole0[:PROBE_SIZE, :PROBE_SIZE], whole1[:PROBE_SIZE, :PROBE_SIZE]
    expected = np.linalg.norm(k1 - k0) / np.linalg.norm(k0)
    assert expected > 0.05  # the kernel moved: the comparison below is not 0 against 0
    np.testing.assert_allclose(measure.ntk_drift(ctx).value, expected, rtol=F64_KERNEL_RTOL)
    # Not the drift on the whole training set:
    assert abs(np.linalg.norm(whole1 - whole0) / np.linalg.norm(whole0) - expected) > 1e3 * F64_KERNEL_RTOL * expected


def test_ntk_drift_of_a_linear_model_is_zero() -> None:
    """f(x) = c_w <W, x> + c_b b has the constant NTK c_w^2 X X^T + c_b^2: however far the weights
    move, the drift is 0 up to float64 round-off."""
    ctx = _context(LINEAR, 1, TrainSettings(lr=0.5, steps=50))
    assert measure.weight_change(ctx).value > 0.1  # the weights did move
    x = ctx.probe[0]
    c_w, c_b = LINEAR.w_std / np.sqrt(x.shape[1]), LINEAR.b_std
    np.testing.assert_allclose(ctx.ntk("end"), c_w**2 * x @ x.T + c_b**2, rtol=F64_KERNEL_RTOL)
    assert 0 <= measure.ntk_drift(ctx).value < F64_ZERO_ATOL


def test_ntk_drift_curve_matches_explicit_kernels_at_every_checkpoint() -> None:
    """The drift hook's curve against a hook of the test's own that takes the explicit NTK at the
    same steps; its last point is the final drift and its first (step 0) is 0."""
    settings = TrainSettings(lr=1.0, steps=40)
    seen: dict[int, float] = {}

    def hooks(module: nn.Module, task) -> list:
        probe = task.x_train[:PROBE_SIZE]
        k0 = explicit_ntk(module, probe)

        def reference(step: int, net: nn.Module) -> dict[str, float]:
            seen[step] = float(np.linalg.norm(explicit_ntk(net, probe) - k0) / np.linalg.norm(k0))
            return {}

        return [measure.ntk_drift_hook(module, task.x_train, task.y_train, settings, checkpoints=4), reference]

    ctx = _context(RELU, 16, settings, hooks=hooks)
    result = measure.ntk_drift(ctx)
    steps = np.asarray(result.curve.x).astype(int)
    np.testing.assert_array_equal(steps, [0, 10, 20, 30, 40])  # every steps // checkpoints, and the last
    expected = np.array([seen[s] for s in steps])
    np.testing.assert_allclose(result.curve.y, expected, rtol=F64_KERNEL_RTOL, atol=F64_ZERO_ATOL)
    assert result.curve.y[0] < F64_ZERO_ATOL and expected[-1] > 0.05
    np.testing.assert_allclose(result.value, result.curve.y[-1], rtol=F64_KERNEL_RTOL)


# ----------------------------------------------------------------------------- alignment


def test_alignment_init_and_end_are_the_centered_alignment_of_the_explicit_ntk() -> None:
    ctx = _context(RELU, 16, TrainSettings(lr=1.0, steps=60))
    x, y = ctx.probe
    init = centered_alignment(explicit_ntk(ctx.module0, x), y)
    end = centered_alignment(explicit_ntk(ctx.module, x), y)
    assert end - init > 0.05  # training aligned the kernel: init and end are distinguishable
    np.testing.assert_allclose(measure.alignment_init(ctx).value, init, rtol=F64_KERNEL_RTOL)
    np.testing.assert_allclose(measure.alignment_end(ctx).value, end, rtol=F64_KERNEL_RTOL)


def test_alignment_of_a_linear_model_with_an_affine_target_in_one_dimension_is_one() -> None:
    """In d = 1 the linear model's NTK c_w^2 x x^T + c_b^2 centres to c_w^2 x_c x_c^T, and the
    target y = 3 x + 1 centres to 3 x_c: the centred alignment is exactly 1. The uncentred one is
    not (the bias and the offset), so an implementation that skips the centring fails."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1))
    y = 3 * x + 1
    module = LINEAR.to_torch(1, input_shape=(1,), seed=0, dtype=torch.float64)
    module0 = copy.deepcopy(module)
    settings = TrainSettings(lr=0.1, steps=5)
    run = train(module, x, y, settings)
    ctx = EmpiricalContext(x, y, x[:8], y[:8], "regression", settings, module0, module, run)
    assert abs(measure.alignment_init(ctx).value - 1) < F64_ZERO_ATOL
    assert abs(measure.alignment_end(ctx).value - 1) < F64_ZERO_ATOL
    kernel = explicit_ntk(module0, x)
    uncentred = np.sum(kernel * (y @ y.T)) / (np.linalg.norm(kernel) * np.linalg.norm(y @ y.T))
    assert uncentred < 0.99


# ----------------------------------------------------------------------------- weight_change


@pytest.mark.parametrize("alpha", [None, 0.5])
def test_weight_change_is_the_ratio_of_parameter_norms(alpha: float | None) -> None:
    """sqrt(sum_p ||p_T - p_0||^2) / sqrt(sum_p ||p_0||^2), one parameter tensor at a time, over
    the trained parameters only (an OutputScaled net's frozen copy of theta_0 is not one)."""
    ctx = _context(RELU, 16, TrainSettings(lr=1.0, steps=30), alpha=alpha)
    end = {name: p.detach() for name, p in _trained(ctx.module)}
    init = {name: p.detach() for name, p in _trained(ctx.module0)}
    assert set(end) == set(init) and all("initial" not in name for name in end)
    moved = sum(float(torch.sum((end[k] - init[k]) ** 2)) for k in end)
    size = sum(float(torch.sum(init[k] ** 2)) for k in init)
    np.testing.assert_allclose(measure.weight_change(ctx).value, np.sqrt(moved / size), rtol=F64_KERNEL_RTOL)


@pytest.mark.parametrize("alpha", [None, 2.0])
def test_weight_change_after_one_gd_step_of_a_linear_model(alpha: float | None) -> None:
    """One GD step on c * mean 1/2 (f - y)^2 for f = c_w <W, x> + c_b b moves W by
    -lr c g c_w mean_i r_i x_i and b by -lr c g c_b mean_i r_i, with r = f0 - y. Plain: c = g = 1,
    f0 = W0 x + b0. OutputScaled alpha (f - f0): c = 1/alpha^2, g = alpha, r = -y, so the weights
    move by O(1/alpha) (the lazy regime of Chizat et al. 2019)."""
    lr = 0.3
    ctx = _context(LINEAR, 1, TrainSettings(lr=lr, steps=1), alpha=alpha)
    net0 = ctx.module0 if alpha is None else ctx.module0.module
    w0, b0 = net0.readout.weight.detach().numpy()[0], net0.readout.bias.detach().numpy()
    x, y = ctx.x_train, ctx.y_train[:, 0]
    c_w, c_b = LINEAR.w_std / np.sqrt(x.shape[1]), LINEAR.b_std
    if alpha is None:
        residual, factor = c_w * x @ w0 + c_b * b0[0] - y, 1.0
    else:
        residual, factor = -y, 1.0 / alpha
    dw = -lr * factor * c_w * np.mean(residual[:, None] * x, axis=0)
    db = -lr * factor * c_b * np.mean(residual)
    expected = np.sqrt(np.sum(dw**2) + db**2) / np.sqrt(np.sum(w0**2) + np.sum(b0**2))
    np.testing.assert_allclose(measure.weight_change(ctx).value, expected, rtol=F64_KERNEL_RTOL)


# ----------------------------------------------------------------------------- linearization_distance


@pytest.mark.parametrize(
    ("momentum", "alpha"),
    [(0.0, None), (0.0, 0.5), (0.9, None), (0.9, 0.5)],
    ids=["gd-closed-form", "gd-closed-form-alpha", "momentum-jvp", "momentum-jvp-alpha"],
)
def test_linearization_distance_against_an_explicit_taylor_model(momentum: float, alpha: float | None) -> None:
    """RMS(f_net - f_lin) / RMS(y) on the test set, with f_lin the first-order Taylor model at
    theta_0 trained by the test's own numpy GD. Plain GD takes genlab's closed form, momentum its
    torch.func.jvp training: both routes are checked."""
    ctx = _context(RELU, 16, TrainSettings(lr=0.5, steps=40, momentum=momentum), alpha=alpha)
    net = _outputs(ctx.module, ctx.x_test)
    lin = explicit_linearized_outputs(ctx, ctx.x_test)
    expected = np.sqrt(np.mean((net - lin) ** 2)) / np.sqrt(np.mean(ctx.y_test**2))
    assert expected > 1e-3  # the net left its linearization: the distance is not 0 against 0
    np.testing.assert_allclose(measure.linearization_distance(ctx).value, expected, rtol=LINEAR_MODEL_RTOL)


@pytest.mark.parametrize("schedule", ["constant", "warmup_constant"], ids=["closed-form", "explicit"])
def test_linearization_distance_is_none_when_only_the_linearized_model_diverges(schedule: str) -> None:
    """At lr lambda_max(Theta_0) / n ~ 2.5 > 2 the Taylor model's GD diverges while the network
    converges (the catapult phase, Lewkowycz et al. 2020). "warmup_constant" with no warm-up is the
    same GD run through explicit training instead of the closed form; both routes must give None
    rather than a number set by the divergence threshold (they gave 1.5e3 and 2.4e10)."""
    ctx = _context(RELU, 16, TrainSettings(lr=2.0, steps=60, schedule=schedule))
    lam = np.linalg.eigvalsh(explicit_ntk(ctx.module0, ctx.x_train)).max()
    assert ctx.settings.lr * lam / len(ctx.x_train) > 2  # the linearized GD diverges
    assert not ctx.run.diverged and ctx.run.train_loss[-1] < 0.2 * ctx.run.train_loss[0]  # the net converged
    assert measure.linearization_distance(ctx).value is None


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_linearization_distance_of_a_linear_model_is_zero(momentum: float) -> None:
    """A linear model is its own first-order Taylor model: trained alike, the two agree to
    round-off (relative to RMS(y) ~ 1)."""
    ctx = _context(LINEAR, 1, TrainSettings(lr=0.5, steps=40, momentum=momentum))
    assert measure.weight_change(ctx).value > 0.1
    assert 0 <= measure.linearization_distance(ctx).value < LINEAR_MODEL_RTOL


# ----------------------------------------------------------------------------- several outputs


def test_several_outputs_sum_the_ntk_over_outputs_and_train_the_linearized_model_explicitly() -> None:
    """Three one-hot outputs (MSE): the drift and the alignments use the NTK traced over outputs,
    sum_o <df_o(x), df_o(x')>, and the linearized model (whose outputs the finite-width NTK
    couples) is trained explicitly rather than by the one-output closed form."""
    task = make_task("gaussian_mixture", seed=0, n_train=30, n_test=24, d=4, n_classes=3)
    spec = ArchSpec(depth=1, activation="relu", w_std=2**0.5, b_std=0.1, out_dim=3)
    ctx = _context(spec, 16, TrainSettings(lr=0.2, steps=40), task=task)  # lr lambda_max / n ~ 1: f_lin converges
    x, y = ctx.probe
    k0, k1 = explicit_ntk(ctx.module0, x), explicit_ntk(ctx.module, x)
    drift = np.linalg.norm(k1 - k0) / np.linalg.norm(k0)
    assert drift > 0.05
    np.testing.assert_allclose(measure.ntk_drift(ctx).value, drift, rtol=F64_KERNEL_RTOL)
    np.testing.assert_allclose(measure.alignment_init(ctx).value, centered_alignment(k0, y), rtol=F64_KERNEL_RTOL)
    np.testing.assert_allclose(measure.alignment_end(ctx).value, centered_alignment(k1, y), rtol=F64_KERNEL_RTOL)
    net, lin = _outputs(ctx.module, ctx.x_test), explicit_linearized_outputs(ctx, ctx.x_test)
    expected = np.sqrt(np.mean((net - lin) ** 2)) / np.sqrt(np.mean(ctx.y_test**2))
    assert expected > 1e-3
    np.testing.assert_allclose(measure.linearization_distance(ctx).value, expected, rtol=LINEAR_MODEL_RTOL)


# ----------------------------------------------------------------------------- diverged runs


def test_a_diverged_run_has_no_end_of_training_measurement() -> None:
    ctx = _context(RELU, 16, TrainSettings(lr=1e3, steps=20))
    assert ctx.run.diverged
    for quantity in (measure.ntk_drift, measure.alignment_end, measure.weight_change, measure.linearization_distance):
        assert quantity(ctx).value is None, quantity.__name__
    # The kernel at init is still measured.
    x, y = ctx.probe
    np.testing.assert_allclose(measure.alignment_init(ctx).value, centered_alignment(explicit_ntk(ctx.module0, x), y),
                               rtol=F64_KERNEL_RTOL)
