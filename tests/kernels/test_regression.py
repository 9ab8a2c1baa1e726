"""Kernel regression and linearized GD / gradient-flow dynamics against independent references.

References: scikit-learn's ``KernelRidge(kernel="precomputed")``, ``np.linalg.pinv``, the
least-squares min-norm solution, and explicit iteration of the function-space update
``f ← f − (η/n) Θ (f − y)`` (Lee et al. 2019). All data are float64.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.kernel_ridge import KernelRidge

from genlab.kernels._regression import (
    FunctionSpaceTrajectory,
    gd_dynamics,
    gradient_flow,
    kernel_regression,
    squared_error_moments,
)

N_TRAIN = 24
N_TEST = 7
DIM = 3
N_OUT = 2
EPS = np.finfo(np.float64).eps


def rbf(a: np.ndarray, b: np.ndarray, lengthscale: float = 1.0) -> np.ndarray:
    """Gaussian kernel Gram matrix exp(-||a_i - b_j||² / (2 ℓ²))."""
    sq = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2 * a @ b.T
    return np.exp(-np.maximum(sq, 0.0) / (2 * lengthscale**2))


def make_problem(seed: int, *, n_out: int | None = None) -> tuple[np.ndarray, ...]:
    """RBF kernels on random points and random targets: (K, K_*, y, y_test)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_TRAIN, DIM))
    x_test = rng.normal(size=(N_TEST, DIM))
    shape = (N_TRAIN,) if n_out is None else (N_TRAIN, n_out)
    test_shape = (N_TEST,) if n_out is None else (N_TEST, n_out)
    return rbf(x, x), rbf(x_test, x), rng.normal(size=shape), rng.normal(size=test_shape)


def rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    """Largest absolute error relative to the largest entry of the reference."""
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


def lr_max(kernel: np.ndarray) -> float:
    """Stability edge 2n/λmax of full-batch GD under the 1/(2n) loss convention."""
    return 2 * kernel.shape[0] / np.linalg.eigvalsh(kernel)[-1]


def iterate_gd(kernel, k_test, y, lr, steps, f0, f0_test):
    """Explicit GD on the linearized model; returns train/test outputs after 0..steps steps."""
    n = kernel.shape[0]
    f, f_test = f0.copy(), f0_test.copy()
    train, test = [f.copy()], [f_test.copy()]
    for _ in range(steps):
        residual = f - y
        f = f - lr / n * kernel @ residual
        f_test = f_test - lr / n * k_test @ residual
        train.append(f.copy())
        test.append(f_test.copy())
    return np.stack(train), np.stack(test)


# ---------------------------------------------------------------- kernel regression

RIDGE = 1e-2
# The ridge system K + ρI has condition number ≤ (λmax + ρ)/ρ ≤ (n + ρ)/ρ ≈ 2.4e3 for an RBF
# Gram (λmax ≤ tr K = n). Backward-stable solvers (sklearn: Cholesky; here: eigh) each err by
# ≲ cond · eps ≈ 5e-13 relative; 1e-8 leaves a wide margin for the different algorithms.
RTOL_SKLEARN = 1e-8


@pytest.mark.parametrize("n_out", [None, N_OUT])
def test_ridge_regression_matches_sklearn(n_out):
    kernel, k_test, y, _ = make_problem(0, n_out=n_out)
    expected = KernelRidge(alpha=RIDGE, kernel="precomputed").fit(kernel, y).predict(k_test)
    actual = kernel_regression(kernel, y, k_test, ridge=RIDGE)
    assert actual.shape == (N_TEST,) + y.shape[1:]
    assert actual.dtype == np.float64
    assert rel_err(actual, expected) < RTOL_SKLEARN


# The well-separated points below (lengthscale 0.5 in 5 dimensions) keep cond(K) < COND_MAX,
# checked in the test; pseudo-inverse and eigh each err by ≲ cond · eps ≈ 2e-12 relative.
COND_MAX = 1e4
RTOL_PINV = 1e-9


@pytest.mark.parametrize("n_out", [None, N_OUT])
def test_ridgeless_matches_pinv_and_interpolates(n_out):
    rng = np.random.default_rng(1)
    x, x_test = rng.normal(size=(N_TRAIN, 5)), rng.normal(size=(N_TEST, 5))
    kernel, k_test = rbf(x, x, 0.5), rbf(x_test, x, 0.5)
    assert np.linalg.cond(kernel) < COND_MAX
    y = rng.normal(size=(N_TRAIN,) if n_out is None else (N_TRAIN, n_out))
    expected = k_test @ np.linalg.pinv(kernel, rtol=N_TRAIN * EPS, hermitian=True) @ y
    assert rel_err(kernel_regression(kernel, y, k_test), expected) < RTOL_PINV
    assert rel_err(kernel_regression(kernel, y, kernel), y) < RTOL_PINV


# Linear kernel X Xᵀ with n > d has rank d; its n - d null eigenvalues come out of eigh at
# ~ eps · λmax, below the default cut-off n · eps · λmax, and the d non-zero ones have
# condition number cond(X)² ≈ 4 here, so the min-norm predictions agree to ~ 1e-14.
RTOL_MIN_NORM = 1e-10


@pytest.mark.parametrize("seed", range(5))
def test_ridgeless_rank_deficient_is_min_norm_least_squares(seed):
    rng = np.random.default_rng(seed)
    x, x_test = rng.normal(size=(N_TRAIN, DIM)), rng.normal(size=(N_TEST, DIM))
    y = rng.normal(size=N_TRAIN)
    expected = x_test @ (np.linalg.pinv(x) @ y)
    actual = kernel_regression(x @ x.T, y, x_test @ x.T)
    assert rel_err(actual, expected) < RTOL_MIN_NORM


def test_ridgeless_rcond_truncates_small_eigenvalues():
    """A cut-off above the smallest eigenvalue drops it, as pinv with the same rtol does."""
    kernel, k_test, y, _ = make_problem(2)
    eigenvalues = np.linalg.eigvalsh(kernel)
    rcond = float(np.sqrt(eigenvalues[0] * eigenvalues[1]) / eigenvalues[-1])
    expected = k_test @ np.linalg.pinv(kernel, rtol=rcond, hermitian=True) @ y
    assert rel_err(kernel_regression(kernel, y, k_test, rcond=rcond), expected) < RTOL_PINV


# ---------------------------------------------------------------- gradient descent

GD_STEPS = 50
# Each explicit step rounds at ~ eps relative to the outputs; over 50 steps that is ≲ 1e-14,
# and the closed form's eigendecomposition adds ~ n · eps. 1e-10 is loose but would catch
# any off-by-one in the step count or a wrong η/n factor (both are O(1) errors).
RTOL_GD = 1e-10
LR_FRACTIONS = (0.05, 0.5, 0.99)  # of lr_max = 2n/λmax; 0.99 oscillates close to the edge


@pytest.mark.parametrize("fraction", LR_FRACTIONS)
def test_gd_dynamics_matches_explicit_iteration(fraction):
    kernel, k_test, y, y_test = make_problem(3, n_out=N_OUT)
    rng = np.random.default_rng(4)
    f0, f0_test = 0.3 * rng.normal(size=y.shape), 0.3 * rng.normal(size=y_test.shape)
    lr = fraction * lr_max(kernel)
    train, test = iterate_gd(kernel, k_test, y, lr, GD_STEPS, f0, f0_test)

    steps = np.arange(GD_STEPS + 1)
    traj = gd_dynamics(kernel, y, k_test, lr=lr, steps=steps, f0_train=f0, f0_test=f0_test, y_test=y_test)
    assert isinstance(traj, FunctionSpaceTrajectory)
    assert traj.f_train.shape == (GD_STEPS + 1, N_TRAIN, N_OUT)
    assert traj.f_test.shape == (GD_STEPS + 1, N_TEST, N_OUT)
    assert rel_err(traj.f_train, train) < RTOL_GD
    assert rel_err(traj.f_test, test) < RTOL_GD
    # t = lr * step is one correctly rounded product per entry in genlab and here: exact
    np.testing.assert_allclose(traj.t, lr * steps, rtol=0, atol=0)
    np.testing.assert_array_equal(traj.steps, steps)
    expected_train_loss = np.sum((train - y) ** 2, axis=(1, 2)) / (2 * N_TRAIN)
    expected_test_loss = np.sum((test - y_test) ** 2, axis=(1, 2)) / (2 * N_TEST)
    assert rel_err(traj.train_loss, expected_train_loss) < RTOL_GD
    assert rel_err(traj.test_loss, expected_test_loss) < RTOL_GD
    assert not traj.diverged


LR_DIVERGENT = 1.05  # of lr_max: the top mode's factor is 1 - 2.1 = -1.1, growing 1.1^50 ≈ 117x


def test_gd_dynamics_divergence_flag_and_blow_up():
    kernel, k_test, y, _ = make_problem(5)
    lr = LR_DIVERGENT * lr_max(kernel)
    train, test = iterate_gd(kernel, k_test, y, lr, GD_STEPS, np.zeros_like(y), np.zeros(N_TEST))
    traj = gd_dynamics(kernel, y, k_test, lr=lr, steps=np.arange(GD_STEPS + 1))
    assert traj.diverged
    # Round-off along the growing mode is amplified by the same 1.1^s as the signal, so the
    # agreement relative to the largest entry is as good as in the stable case.
    assert rel_err(traj.f_train, train) < RTOL_GD
    assert rel_err(traj.f_test, test) < RTOL_GD
    assert traj.train_loss[-1] > 10 * traj.train_loss[0]
    assert not gd_dynamics(kernel, y, lr=0.99 * lr_max(kernel), steps=1).diverged


def test_gd_null_space_ignores_the_stability_edge():
    """Null modes do not move, so a learning rate far above 2n for a small kernel (λmax < 1)
    but below its edge 2n/λmax neither flags divergence nor overflows (warnings are errors)."""
    rng = np.random.default_rng(15)
    x = rng.normal(size=(N_TRAIN, DIM))
    kernel = 1e-4 * x @ x.T
    lr = 0.99 * lr_max(kernel)
    assert lr > 100 * N_TRAIN
    traj = gd_dynamics(kernel, rng.normal(size=N_TRAIN), lr=lr, steps=[0, 10, 10_000])
    assert not traj.diverged
    assert np.all(np.isfinite(traj.f_train))


def test_gd_train_loss_non_increasing_below_edge():
    """Each mode's residual factor |1 - ηλ/n| ≤ 1, so every loss term is non-increasing;
    the tolerance only absorbs round-off (a few eps relative to the initial loss)."""
    kernel, _, y, _ = make_problem(6, n_out=N_OUT)
    traj = gd_dynamics(kernel, y, lr=0.99 * lr_max(kernel), steps=np.arange(300))
    assert np.all(np.diff(traj.train_loss) <= 1e-14 * traj.train_loss[0])
    assert traj.train_loss[-1] < traj.train_loss[0]


def test_gd_scalar_steps_and_defaults():
    kernel, _, y, _ = make_problem(7)
    traj = gd_dynamics(kernel, y, lr=1.0, steps=3)
    assert traj.f_train.shape == (1, N_TRAIN)
    assert traj.f_test is None and traj.test_loss is None
    np.testing.assert_array_equal(traj.steps, [3])
    # At s = 0 the outputs are y + V Vᵀ (f0 − y): f0 up to the round-off of an orthogonal
    # change of basis, ~ n · eps · |y| ≈ 5e-15 (the residual form keeps small late-time
    # losses accurate instead).
    zero = gd_dynamics(kernel, y, lr=1.0, steps=0)
    np.testing.assert_allclose(zero.f_train[0], np.zeros(N_TRAIN), rtol=0, atol=N_TRAIN * EPS * np.max(np.abs(y)))
    assert zero.train_loss[0] == pytest.approx(np.sum(y**2) / (2 * N_TRAIN), rel=1e-13)


# ---------------------------------------------------------------- small eigenvalues

SMALL_EIGENVALUE = 1e-10  # far above the null-space cut-off 2 · eps ≈ 4e-16 of diag(1, λ)
# A naive (1 - (1 - a)^s)/λ with a = ηλ/n ≈ 5e-11 loses ~ eps/(s·a) ≈ 4e-8 relative to
# cancellation; the expm1/log1p form stays at round-off. 1e-13 separates the two.
RTOL_SMALL = 1e-13


def test_gd_gain_is_stable_for_small_eigenvalues():
    """Θ = diag(1, λ), Θ_* = I: f*_s = f*_0 − g_s(λ) (f_0 − y) per coordinate, and the
    series g_s = (sη/n)(1 − (s−1)a/2 + O((sa)²)) gives the reference (O((sa)²) ≈ 1e-17)."""
    kernel = np.diag([1.0, SMALL_EIGENVALUE])
    y = np.array([0.0, 1.0])
    lr, s, n = 1.0, 100, 2
    traj = gd_dynamics(kernel, y, np.eye(2), lr=lr, steps=s)
    a = lr * SMALL_EIGENVALUE / n
    expected_gain = s * lr / n * (1 - (s - 1) * a / 2)
    assert traj.f_test[0, 1] == pytest.approx(expected_gain, rel=RTOL_SMALL)


def test_flow_gain_is_stable_for_small_eigenvalues():
    """Same check for the flow: (1 − e^{−x})/λ = (t/n)(1 − x/2 + O(x²)), x = λt/n."""
    kernel = np.diag([1.0, SMALL_EIGENVALUE])
    t, n = 50.0, 2
    traj = gradient_flow(kernel, np.array([0.0, 1.0]), np.eye(2), t=t)
    x = SMALL_EIGENVALUE * t / n
    assert traj.f_test[0, 1] == pytest.approx(t / n * (1 - x / 2), rel=RTOL_SMALL)


def test_null_space_is_frozen_without_warnings():
    """An exactly zero eigenvalue: its residual stays, it adds nothing to the test outputs,
    and no division by zero (warnings are errors) happens, also at t = inf."""
    kernel = np.diag([2.0, 0.0])
    y = np.array([1.0, 1.0])
    flow = gradient_flow(kernel, y, np.eye(2), t=[1.0, np.inf])
    gd = gd_dynamics(kernel, y, np.eye(2), lr=0.5, steps=[1, 10])
    # The null coordinate's residual passes through eigh's eigenvectors of diag(2, 0) (e_1, e_2
    # on any LAPACK we know, but not promised): rounding of a 2-term change of basis, 2 n eps |y|.
    for traj in (flow, gd):
        np.testing.assert_allclose(traj.f_train[:, 1], [0.0, 0.0], rtol=0, atol=4 * EPS)
        np.testing.assert_allclose(traj.f_test[:, 1], [0.0, 0.0], rtol=0, atol=4 * EPS)
    np.testing.assert_allclose(flow.f_train[-1], [1.0, 0.0], rtol=0, atol=1e-15)


# ---------------------------------------------------------------- gradient flow

FLOW_TIME_SCALE = 2.0  # t = 2n/λmax: the top mode has decayed by e^{-2}
EULER_STEPS = (200, 400)
# Euler with step η on each mode r' = −(λ/n) r, a = ηλ/n ∈ [0, 1], s = t/η steps:
# 0 ≤ e^{−a} − (1 − a) ≤ a²/2, so |(1 − a)^s − e^{−as}| ≤ s a²/2 = (η t / 2)(λ/n)². After the
# orthogonal change of basis every train coordinate errs by ≤ (η t / 2)(λmax/n)² ||r0||_2.
# The error is first order in η: halving η must halve it (ratio in [1.9, 2.1]; the O(η²)
# correction is ~ 1/s ≤ 0.5%). The test outputs are checked through the same ratio.
EULER_RATIO = (1.9, 2.1)


def test_gradient_flow_is_small_lr_limit_of_gd():
    kernel, k_test, y, _ = make_problem(8)
    n = N_TRAIN
    lam_max = np.linalg.eigvalsh(kernel)[-1]
    t = FLOW_TIME_SCALE * n / lam_max
    flow = gradient_flow(kernel, y, k_test, t=t)
    errors = []
    for steps in EULER_STEPS:
        lr = t / steps
        train, test = iterate_gd(kernel, k_test, y, lr, steps, np.zeros(n), np.zeros(N_TEST))
        bound = lr * t / 2 * (lam_max / n) ** 2 * np.linalg.norm(y)
        train_err = np.max(np.abs(flow.f_train[0] - train[-1]))
        assert train_err <= bound
        errors.append(max(train_err, np.max(np.abs(flow.f_test[0] - test[-1]))))
    assert EULER_RATIO[0] <= errors[0] / errors[1] <= EULER_RATIO[1]


def test_gradient_flow_at_infinity_is_kernel_regression():
    kernel, k_test, y, y_test = make_problem(9, n_out=N_OUT)
    flow = gradient_flow(kernel, y, k_test, t=np.inf, y_test=y_test)
    expected = kernel_regression(kernel, y, k_test)
    assert rel_err(flow.f_test[0], expected) < RTOL_PINV
    assert rel_err(flow.f_train[0], y) < RTOL_PINV
    assert flow.steps is None and not flow.diverged
    assert flow.test_loss[0] == pytest.approx(np.sum((expected - y_test) ** 2) / (2 * N_TEST), rel=RTOL_PINV)

    rng = np.random.default_rng(10)
    f0, f0_test = rng.normal(size=y.shape), rng.normal(size=(N_TEST, N_OUT))
    shifted = gradient_flow(kernel, y, k_test, t=np.inf, f0_train=f0, f0_test=f0_test)
    expected_shifted = f0_test + kernel_regression(kernel, y - f0, k_test)
    assert rel_err(shifted.f_test[0], expected_shifted) < RTOL_PINV


def test_gradient_flow_at_infinity_rank_deficient():
    """On X Xᵀ (rank d < n) t = inf is the min-norm solution, with no warnings."""
    rng = np.random.default_rng(11)
    x, x_test = rng.normal(size=(N_TRAIN, DIM)), rng.normal(size=(N_TEST, DIM))
    y = rng.normal(size=N_TRAIN)
    flow = gradient_flow(x @ x.T, y, x_test @ x.T, t=np.inf)
    assert rel_err(flow.f_test[0], x_test @ (np.linalg.pinv(x) @ y)) < RTOL_MIN_NORM


def test_gradient_flow_loss_non_increasing():
    kernel, _, y, _ = make_problem(12)
    times = np.concatenate([[0.0], np.geomspace(1e-3, 1e4, 60), [np.inf]])
    traj = gradient_flow(kernel, y, t=times)
    assert np.all(np.diff(traj.train_loss) <= 1e-14 * traj.train_loss[0])
    np.testing.assert_array_equal(traj.t, times)
    assert traj.f_train.shape == (times.size, N_TRAIN)


# ---------------------------------------------------------------- inputs

def test_accepts_torch_tensors():
    kernel, k_test, y, y_test = make_problem(13)
    expected = kernel_regression(kernel, y, k_test, ridge=RIDGE)
    as_torch = [torch.from_numpy(a) for a in (kernel, k_test, y, y_test)]
    actual = kernel_regression(as_torch[0], as_torch[2], as_torch[1], ridge=RIDGE)
    assert isinstance(actual, np.ndarray)
    # The tensors share the arrays' float64 memory: the same algorithm on the same values (expected
    # bit-identical, but no BLAS promises it across buffers); 1e-13 relative, which a lossy
    # conversion (float32: 1e-7) would fail.
    np.testing.assert_allclose(actual, expected, rtol=1e-13, atol=1e-13 * np.abs(expected).max())
    traj = gd_dynamics(as_torch[0], as_torch[2], as_torch[1], lr=1.0, steps=torch.arange(3), y_test=as_torch[3])
    reference = gd_dynamics(kernel, y, k_test, lr=1.0, steps=np.arange(3), y_test=y_test)
    np.testing.assert_allclose(traj.f_test, reference.f_test, rtol=1e-13, atol=1e-13 * np.abs(reference.f_test).max())
    flow = gradient_flow(as_torch[0].float(), as_torch[2].float(), t=torch.tensor([0.0, 1.0]))
    assert flow.f_train.dtype == np.float64


def _good():
    kernel, k_test, y, y_test = make_problem(14)
    return {"k_train_train": kernel, "y_train": y, "k_test_train": k_test}


def _nan_kernel():
    kernel = _good()["k_train_train"].copy()
    kernel[0, 1] = kernel[1, 0] = np.nan
    return kernel


def _asymmetric_kernel():
    kernel = _good()["k_train_train"].copy()
    kernel[0, 1] += 0.5
    return kernel


BAD_INPUTS = [
    # (function, overrides, exception, message pattern)
    (kernel_regression, {"k_train_train": np.ones((N_TRAIN, N_TRAIN + 1))}, ValueError, "k_train_train must be a square"),
    (kernel_regression, {"y_train": np.ones(N_TRAIN + 1)}, ValueError, "y_train must have 24 rows"),
    (kernel_regression, {"y_train": np.ones((N_TRAIN, 2, 2))}, ValueError, "y_train must have 1 or 2 dimensions"),
    (kernel_regression, {"k_test_train": np.ones((N_TEST, N_TRAIN - 1))}, ValueError, "k_test_train must have 24 columns"),
    (kernel_regression, {"ridge": -0.1}, ValueError, r"ridge must be a non-negative float; got -0\.1"),
    (kernel_regression, {"ridge": "big"}, TypeError, "ridge must be a non-negative float; got str"),
    (kernel_regression, {"rcond": -1e-3}, ValueError, "rcond must be a non-negative float"),
    (kernel_regression, {"k_train_train": _nan_kernel()}, ValueError, "k_train_train contains NaN"),
    (kernel_regression, {"k_train_train": _asymmetric_kernel()}, ValueError, "k_train_train must be a symmetric"),
    (kernel_regression, {"k_train_train": "kernel"}, TypeError, "k_train_train must be a numeric"),
    (gd_dynamics, {"lr": -0.1}, ValueError, r"lr must be a positive float; got -0\.1"),
    (gd_dynamics, {"lr": 0.0}, ValueError, "lr must be a positive float; got 0.0"),
    (gd_dynamics, {"lr": True}, TypeError, "lr must be a positive float; got bool"),
    (gd_dynamics, {"steps": -1}, ValueError, "steps must be >= 0"),
    (gd_dynamics, {"steps": [1.5]}, TypeError, "steps must be an int or a 1-D array of ints"),
    (gd_dynamics, {"steps": [[1, 2]]}, ValueError, "steps must have 0 or 1 dimensions"),
    (gd_dynamics, {"f0_train": np.zeros(N_TRAIN + 1)}, ValueError, r"f0_train must have shape \(24,\)"),
    (gd_dynamics, {"f0_test": np.zeros((N_TEST, 2))}, ValueError, r"f0_test must have shape \(7,\)"),
    (gd_dynamics, {"y_test": np.zeros(N_TEST + 1)}, ValueError, r"y_test must have shape \(7,\)"),
    (gd_dynamics, {"k_test_train": None, "y_test": np.zeros(N_TEST)}, ValueError, "y_test was given without k_test_train"),
    (gradient_flow, {"t": -1.0}, ValueError, "t must be >= 0"),
    (gradient_flow, {"t": [0.0, np.nan]}, ValueError, "t must not contain NaN"),
    (gradient_flow, {"k_train_train": _nan_kernel()}, ValueError, "k_train_train contains NaN"),
    (gradient_flow, {"k_test_train": None, "f0_test": np.zeros(N_TEST)}, ValueError, "f0_test was given without k_test_train"),
]
DEFAULT_OPTIONS = {gd_dynamics: {"lr": 1.0, "steps": 3}, gradient_flow: {"t": 1.0}, kernel_regression: {}}


@pytest.mark.parametrize(("function", "overrides", "error", "match"), BAD_INPUTS)
def test_bad_input_names_the_argument(function, overrides, error, match):
    kwargs = {**_good(), **DEFAULT_OPTIONS[function], **overrides}
    with pytest.raises(error, match=match):
        function(kwargs.pop("k_train_train"), kwargs.pop("y_train"), kwargs.pop("k_test_train"), **kwargs)


def test_default_rcond_follows_the_kernel_precision() -> None:
    """A float32 kernel's eigenvalues below ~n * 1.2e-7 relative are round-off: the default
    cut-off must drop them, so ridgeless regression on a rank-deficient float32 kernel equals
    the float64 min-norm answer to float32 accuracy instead of amplifying noise by ~1e7."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 5))  # linear kernel of rank 5 on 40 points
    k64 = x @ x.T
    y = rng.normal(size=40)
    x_test = rng.normal(size=(7, 5))
    reference = kernel_regression(k64, y, x_test @ x.T)
    k32 = (k64 + 1e-6 * rng.normal(size=k64.shape)).astype(np.float32)
    k32 = (k32 + k32.T) / 2
    got = kernel_regression(k32, y, (x_test @ x.T).astype(np.float32))
    assert np.max(np.abs(got - reference)) / np.max(np.abs(reference)) < 1e-3


def _joint_prior(rng: np.random.Generator, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """A random PSD joint covariance on n + m points and a square root S with S S^T = K."""
    z = rng.normal(size=(n + m, 6))
    joint = np.exp(-0.5 * ((z[:, None] - z[None]) ** 2).sum(-1)) + 0.1 * z @ z.T / 6
    values, vectors = np.linalg.eigh(joint)
    return joint, vectors * np.sqrt(np.clip(values, 0, None))


@pytest.mark.parametrize("dynamics", ["gd", "flow"])
def test_prior_variances_equal_the_spread_of_outputs_over_f0(dynamics: str) -> None:
    """With f0 = S z the outputs are linear in z, so Var over z ~ N(0, I) equals the sum of
    squared outputs over the columns of S run as f0 with zero targets: an exact identity
    (1e-10: rounding only). Expected losses add k * mean variance to the mean-function loss."""
    rng = np.random.default_rng(11)
    n, m, k = 12, 7, 2
    theta = _joint_prior(rng, n, m)[0]
    joint, root = _joint_prior(rng, n, m)
    y, y_test = rng.normal(size=(n, k)), rng.normal(size=(m, k))
    prior = (joint[:n, :n], joint[n:, :n], np.diag(joint)[n:])
    if dynamics == "gd":
        run = lambda **kw: gd_dynamics(theta[:n, :n], kw.pop("y"), theta[n:, :n], lr=0.7, steps=[0, 3, 40], **kw)  # noqa: E731
    else:
        run = lambda **kw: gradient_flow(theta[:n, :n], kw.pop("y"), theta[n:, :n], t=[0.0, 2.0, np.inf], **kw)  # noqa: E731
    with_prior = run(y=y, y_test=y_test, prior=prior)
    spread = run(y=np.zeros((n, n + m)), f0_train=root[:n], f0_test=root[n:])
    np.testing.assert_allclose(with_prior.var_train, np.sum(spread.f_train**2, axis=2), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(with_prior.var_test, np.sum(spread.f_test**2, axis=2), rtol=1e-9, atol=1e-12)
    mean = run(y=y, y_test=y_test)  # f0 = 0: the mean function
    np.testing.assert_allclose(with_prior.f_test, mean.f_test, rtol=1e-12)
    expected_test = mean.test_loss + k * with_prior.var_test.sum(axis=1) / (2 * m)
    np.testing.assert_allclose(with_prior.test_loss, expected_test, rtol=1e-12)
    # At step 0 the variance is the prior itself.
    np.testing.assert_allclose(with_prior.var_test[0], np.diag(joint)[n:], rtol=1e-10)


@pytest.mark.parametrize("dynamics", ["gd", "flow"])
def test_prior_test_covariance_is_the_covariance_of_outputs_over_f0(dynamics: str) -> None:
    """With f0 = S z the test outputs deviate from their mean by a linear map of z, so their
    covariance over z ~ N(0, I) is the Gram of the outputs obtained from the columns of S as f0
    with zero targets: an exact identity (1e-10: rounding only). Its diagonal is var_test."""
    rng = np.random.default_rng(12)
    n, m = 12, 7
    theta = _joint_prior(rng, n, m)[0]
    joint, root = _joint_prior(rng, n, m)
    y, y_test = rng.normal(size=n), rng.normal(size=m)
    prior = (joint[:n, :n], joint[n:, :n], joint[n:, n:])
    if dynamics == "gd":
        run = lambda **kw: gd_dynamics(theta[:n, :n], kw.pop("y"), theta[n:, :n], lr=0.7, steps=[0, 3, 40], **kw)  # noqa: E731
    else:
        run = lambda **kw: gradient_flow(theta[:n, :n], kw.pop("y"), theta[n:, :n], t=[0.0, 2.0, np.inf], **kw)  # noqa: E731
    with_prior = run(y=y, y_test=y_test, prior=prior)
    deviations = run(y=np.zeros((n, n + m)), f0_train=root[:n], f0_test=root[n:]).f_test[-1]  # (m, n + m)
    np.testing.assert_allclose(with_prior.cov_test, deviations @ deviations.T, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.diag(with_prior.cov_test), with_prior.var_test[-1], rtol=1e-10)
    # The diagonal-only prior gives the same trajectory without the covariance.
    diagonal = run(y=y, y_test=y_test, prior=(joint[:n, :n], joint[n:, :n], np.diag(joint)[n:]))
    np.testing.assert_allclose(diagonal.test_loss, with_prior.test_loss, rtol=1e-12)
    assert diagonal.cov_test is None and diagonal.test_loss_std is None


@pytest.mark.parametrize("n_out", [None, 3])
def test_test_loss_mean_and_spread_match_monte_carlo_over_f0(n_out: int | None) -> None:
    """The closed-form mean and standard deviation over f0 ~ GP(0, K) of the test loss after T
    discrete GD steps against Monte Carlo: 4000 draws of f0 (numpy, from the joint covariance),
    each run through the explicit function-space iteration (iterate_gd), scalar and one-hot
    (3 classes, every output column its own f0 draw with the shared kernel) targets.
    Tolerances: 4 Monte Carlo standard errors, sd/sqrt(D) for the mean and
    sd((L - mean L)^2)/sqrt(D) for the variance (a false failure has probability ~1e-4)."""
    rng = np.random.default_rng(13)
    n, m, steps, draws = 12, 9, 25, 4000
    theta = _joint_prior(rng, n, m)[0]
    joint, root = _joint_prior(rng, n, m)
    if n_out is None:
        y, y_test = rng.normal(size=n), rng.normal(size=m)
    else:
        y, y_test = np.eye(n_out)[rng.integers(n_out, size=n)], np.eye(n_out)[rng.integers(n_out, size=m)]
    k = 1 if n_out is None else n_out
    lr = 0.5 * lr_max(theta[:n, :n])
    traj = gd_dynamics(theta[:n, :n], y, theta[n:, :n], lr=lr, steps=[0, steps], y_test=y_test,
                       prior=(joint[:n, :n], joint[n:, :n], joint[n:, n:]))

    f0 = root @ rng.normal(size=(n + m, draws * k))  # column j * k + c: draw j, output c
    targets = np.tile(y.reshape(n, k), (1, draws))
    _, test = iterate_gd(theta[:n, :n], theta[n:, :n], targets, lr, steps, f0[:n], f0[n:])
    residual = test[-1].reshape(m, draws, k) - y_test.reshape(m, 1, k)
    losses = np.sum(residual**2, axis=(0, 2)) / (2 * m)  # (draws,)

    mc_mean, mc_var = losses.mean(), losses.var(ddof=1)
    assert abs(traj.test_loss[-1] - mc_mean) < 4 * losses.std() / np.sqrt(draws)
    se_var = np.std((losses - mc_mean) ** 2) / np.sqrt(draws)
    assert abs(traj.test_loss_std**2 - mc_var) < 4 * se_var
    assert traj.test_loss_std > 0.05 * traj.test_loss[-1]  # a spread worth predicting here
    # The moments' mean is the expected loss the trajectory reports (same algebra, exact).
    mean, _ = squared_error_moments(traj.f_test[-1].reshape(m, k) - y_test.reshape(m, k), traj.cov_test)
    assert mean / (2 * m) == pytest.approx(traj.test_loss[-1], rel=1e-12)


def test_squared_error_moments_of_independent_coordinates() -> None:
    """Diagonal C: S = sum_j c_j (z_j + r_j / sqrt(c_j))^2, a sum of independent scaled
    non-central chi-square_1 variables with mean c + r^2 and variance 2c^2 + 4 c r^2 each
    (textbook moments; exact up to rounding)."""
    c, r = np.array([0.5, 2.0, 1.5]), np.array([1.0, -0.3, 0.0])
    mean, variance = squared_error_moments(r, np.diag(c))
    assert mean == pytest.approx(np.sum(c + r**2), rel=1e-14)
    assert variance == pytest.approx(np.sum(2 * c**2 + 4 * c * r**2), rel=1e-14)


def test_prior_rejects_f0_and_bad_shapes() -> None:
    k = np.eye(3)
    with pytest.raises(ValueError, match="f0_train/f0_test must be None with a prior"):
        gd_dynamics(k, np.ones(3), lr=0.1, steps=1, f0_train=np.ones(3), prior=(k, None, None))
    with pytest.raises(ValueError, match=r"prior\[0\] \(NNGP train-train\) must have shape \(3, 3\)"):
        gd_dynamics(k, np.ones(3), lr=0.1, steps=1, prior=(np.eye(2), None, None))
    with pytest.raises(ValueError, match=r"prior\[2\].*\(2, 2\) \(or its diagonal \(2,\)\); got \(2, 3\) and \(2, 3\)"):
        gd_dynamics(k, np.ones(3), np.ones((2, 3)), lr=0.1, steps=1, prior=(k, np.ones((2, 3)), np.ones((2, 3))))


# ---------------------------------------------------------------- ill-conditioned kernels

from genlab.kernels import IllConditionedKernelWarning  # noqa: E402


def near_duplicate_problem(offset: float = 1e-6) -> tuple[np.ndarray, ...]:
    """RBF problem whose last 4 inputs repeat 4 others shifted by ``offset`` (near-duplicates),
    with conflicting targets there. Measured: λ_min 9.2e-14, λ_max 6.87 (ratio 1.3e-14, just
    above the null cut-off n eps = 5.3e-15 and far below sqrt(n eps) = 7.3e-8); jitter 5.0e-7."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(N_TRAIN - 4, DIM))
    x = np.concatenate([x, x[:4] + offset * rng.normal(size=(4, DIM))])
    x_test = rng.normal(size=(N_TEST, DIM))
    return rbf(x, x), rbf(x_test, x), rng.normal(size=N_TRAIN)


def expected_jitter(kernel: np.ndarray) -> float:
    """The documented jitter: brings λ_min to sqrt(n eps) * λ_max (eigvalsh, independently)."""
    lam = np.linalg.eigvalsh(kernel)
    return np.sqrt(kernel.shape[0] * EPS) * lam[-1] - lam[0]


# The jittered system has condition number 1/sqrt(n eps) ~ 1.4e7, so two correct solvers agree
# to ~1e7 * eps ~ 2e-9 relative; 1e-6 leaves room for the eigen- vs Cholesky-based round-off.
JITTER_RTOL = 1e-6


def test_near_duplicate_inputs_fall_back_to_a_jitter_ridge_with_a_warning():
    kernel, k_test, y = near_duplicate_problem()
    with pytest.warns(IllConditionedKernelWarning, match="k_train_train is ill-conditioned"):
        predictions = kernel_regression(kernel, y, k_test)
    assert np.all(np.isfinite(predictions))
    reference = KernelRidge(alpha=expected_jitter(kernel), kernel="precomputed").fit(kernel, y).predict(k_test)
    assert rel_err(predictions, reference) < JITTER_RTOL
    # Without the fallback the pseudo-inverse amplifies the conflicting targets: check it would.
    raw = k_test @ np.linalg.pinv(kernel, rcond=N_TRAIN * EPS, hermitian=True) @ y
    assert np.max(np.abs(raw)) > 1e3 * np.max(np.abs(reference))


def test_flow_at_infinity_and_long_gd_on_near_duplicates_use_the_same_jitter():
    kernel, k_test, y = near_duplicate_problem()
    jitter = expected_jitter(kernel)
    reference = KernelRidge(alpha=jitter, kernel="precomputed").fit(kernel, y).predict(k_test)
    with pytest.warns(IllConditionedKernelWarning):
        flow = gradient_flow(kernel, y, k_test, t=[1.0, np.inf])
    assert rel_err(flow.f_test[-1], reference) < JITTER_RTOL
    assert np.all(np.isfinite(flow.f_train)) and not flow.diverged
    lr = 0.5 * lr_max(kernel)
    with pytest.warns(IllConditionedKernelWarning):
        gd = gd_dynamics(kernel, y, k_test, lr=lr, steps=[10, 10**18])
    assert rel_err(gd.f_test[-1], reference) < JITTER_RTOL  # GD on K + jitter*I has converged
    assert np.all(np.isfinite(gd.train_loss)) and not gd.diverged


def test_moderate_gd_on_near_duplicates_needs_no_jitter():
    """Gain <= s eta / n: 1000 steps amplify round-off by < 2000, no warning (errors here),
    and the outputs equal explicit iteration of the GD recursion."""
    kernel, k_test, y = near_duplicate_problem()
    lr = 0.5 * lr_max(kernel)
    traj = gd_dynamics(kernel, y, k_test, lr=lr, steps=1000)
    train, test = iterate_gd(kernel, k_test, y[:, None], lr, 1000, np.zeros((N_TRAIN, 1)), np.zeros((N_TEST, 1)))
    assert rel_err(traj.f_test[-1], test[-1][:, 0]) < 1e-9  # 1000 steps of float64 round-off


def test_exact_duplicate_inputs_are_the_null_space_without_a_warning():
    """Exactly repeated inputs give exactly repeated kernel rows: a null mode, handled by the
    pseudo-inverse (no warning: warnings are errors). With conflicting targets there the
    min-norm least-squares fit equals regression on the distinct inputs with averaged targets."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(N_TRAIN - 3, DIM))
    x_dup = np.concatenate([x, x[:3]])
    y = rng.normal(size=N_TRAIN)
    x_test = rng.normal(size=(N_TEST, DIM))
    predictions = kernel_regression(rbf(x_dup, x_dup), y, rbf(x_test, x_dup))
    y_mean = y[: N_TRAIN - 3].copy()
    y_mean[:3] = (y[:3] + y[N_TRAIN - 3:]) / 2
    reference = rbf(x_test, x) @ np.linalg.solve(rbf(x, x), y_mean)
    assert rel_err(predictions, reference) < 1e-9  # distinct-input RBF system, cond measured 7e2: 7e2 * eps ~ 2e-13
