"""Kernel regression and gradient-descent dynamics of linearized models in function space.

Convention. The training loss is ``L(θ) = 1/(2n) Σ_i ||f(x_i) − y_i||²``: the mean over the
n training samples of half the squared error summed over outputs; test losses use the same
``1/(2m) Σ ||·||²`` form over the m test samples. For a model linearized around its
initialization, ``f(x; θ) = f0(x) + ∇_θ f0(x) (θ − θ0)``, with neural tangent kernel
``Θ(x, x') = ∇_θ f0(x) ∇_θ f0(x')ᵀ`` (Jacot, Gabriel & Hongler 2018), gradient flow
``dθ/dt = −∇L`` gives, on the training inputs,

    df/dt = −(1/n) Θ (f − y),

and full-batch gradient descent with learning rate η gives

    f_{s+1} = f_s − (η/n) Θ (f_s − y),    f*_{s+1} = f*_s − (η/n) Θ_* (f_s − y)

on the training and test inputs (Lee et al. 2019, "Wide neural networks of any depth
evolve as linear models under gradient descent"), where ``Θ = Θ(X, X)`` (n × n) and
``Θ_* = Θ(X_*, X)`` (m × n). Time is ``t = η · steps``, so that small-η descent follows the
flow at the same ``t``. Both are solved in closed form through ``Θ = V diag(λ) Vᵀ``;
everything is computed in float64.

Eigen-directions with ``|λ| ≤ rcond · max|λ|`` (``rcond = n · eps``, eps of the
kernel's dtype as given) are the
kernel's numerical null space: there the residual does not move and the test outputs get
no contribution (``Θ_* v = 0`` for a positive semi-definite joint kernel), which makes
``t → ∞`` the minimum-norm kernel interpolant and keeps round-off in tiny eigenvalues from
being amplified.

Ill-conditioned kernels (jitter fallback). Eigenvalues just above that cut-off (near-duplicate
inputs, or duplicates in a kernel computed in lower precision than it is passed in) are
inverted, and the round-off they carry, ~``rcond · max|λ|``, is amplified by up to
``max|λ| / λ_min``. When a solve would amplify by more than ``1/τ`` with ``τ = sqrt(n · eps)``
(eps of the kernel's dtype as given) -- ridgeless regression or the gain ``g`` of a
non-growing mode at the largest requested time, with ``g · max|λ| > 1/τ`` -- the kernel is
replaced by ``Θ + jitter · I``, the smallest ridge that brings the kept spectrum to
``λ_min + jitter = τ · max|λ|`` (so at most half the significant digits are lost), and an
:class:`IllConditionedKernelWarning` names the condition number and the jitter. Train and test
outputs are then those of the jittered kernel (``Θ_*`` is unchanged), as in the jitter of GP
regression. Exact null modes and growing modes (divergence) are left as described above;
gradient descent at moderate step counts never needs the jitter (its gain is ``≤ s η / n``).
"""

from __future__ import annotations

import contextlib

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from genlab._arrays import as_numpy, check_finite, check_ndim
from genlab._checks import is_real, real
from genlab.kernels._spectra import _as_kernel, _as_targets

__all__ = [
    "FunctionSpaceTrajectory",
    "IllConditionedKernelWarning",
    "gd_dynamics",
    "gradient_flow",
    "kernel_regression",
    "squared_error_moments",
]

class IllConditionedKernelWarning(UserWarning):
    """A kernel too ill-conditioned for the requested solve: a jitter ridge was added (see
    :mod:`genlab.kernels._regression`). Deduplicate the inputs, pass a ``ridge``, or compute
    the kernel in float64 to avoid it."""


def _jitter(eigenvalues: np.ndarray, amplification: float, n: int, eps: float, *, stacklevel: int) -> float:
    """The jitter that brings the smallest of ``eigenvalues`` (the kept, non-growing modes) to
    ``τ · max|λ|`` when ``amplification`` (round-off gain relative to max|λ|) exceeds ``1/τ``,
    with a warning; else 0."""
    tau = float(np.sqrt(n * eps))
    lam_max = float(np.max(np.abs(eigenvalues), initial=0.0))
    if lam_max == 0.0 or not amplification * tau > 1.0:
        return 0.0
    jitter = tau * lam_max - float(np.min(eigenvalues))
    if jitter <= 0.0:
        return 0.0
    warnings.warn(
        f"k_train_train is ill-conditioned (round-off amplified {amplification:.3g}x, limit 1/sqrt(n*eps) = {1 / tau:.3g}; "
        f"duplicate or near-duplicate inputs?): solved with k_train_train + {jitter:.3g} * I",
        IllConditionedKernelWarning,
        stacklevel=stacklevel,
    )
    return jitter


@dataclass(frozen=True, eq=False)
class FunctionSpaceTrajectory:
    """Outputs and losses of a linearized model along gradient descent or gradient flow.

    ``T`` is the number of requested times, ``n``/``m`` the numbers of training/test
    samples; the trailing ``k`` is present when the targets are (n, k).
    Compared by identity (``eq=False``): the fields are arrays.

    Attributes:
        t: (T,) time, ``η · steps`` for gradient descent or the flow time.
        steps: (T,) integer step counts for gradient descent; ``None`` for the flow.
        f_train: (T, n[, k]) outputs on the training inputs.
        f_test: (T, m[, k]) outputs on the test inputs, ``None`` without a test kernel.
        train_loss: (T,) ``1/(2n) Σ_i ||f(x_i) − y_i||²`` (its expectation over f0 with a prior).
        test_loss: (T,) the same over the test set, ``None`` without test targets.
        var_train: (T, n) variance of each training output over the random initial function
            (the same for every output column), ``None`` without an NNGP prior.
        var_test: (T, m) the same on the test inputs, ``None`` without a prior or test kernel.
        cov_test: (m, m) covariance over f0 of each test output column at the last requested
            time ``t[-1]`` (the columns are independent and share it), ``None`` unless the prior
            has the full (m, m) test-test block. Only the last time: it costs O(m² n).
        test_loss_std: standard deviation over f0 of the test loss at ``t[-1]``: the spread of
            one draw's (one seed's) test loss around ``test_loss[-1]``; ``None`` without
            ``cov_test`` or test targets. See :func:`squared_error_moments`.
        diverged: gradient descent: some kernel eigenvalue has ``|1 − ηλ/n| > 1``, so that
            the residual along it grows; gradient flow: some eigenvalue is negative beyond
            the null-space tolerance (never for a positive semi-definite kernel).
    """

    t: np.ndarray
    steps: np.ndarray | None
    f_train: np.ndarray
    f_test: np.ndarray | None
    train_loss: np.ndarray
    test_loss: np.ndarray | None
    diverged: bool
    var_train: np.ndarray | None = None
    var_test: np.ndarray | None = None
    cov_test: np.ndarray | None = None
    test_loss_std: float | None = None


@dataclass(frozen=True)
class _Prior:
    """NNGP covariance of the initial function f0 ~ GP(0, K) on train and test inputs."""

    train_train: np.ndarray  # (n, n)
    test_train: np.ndarray | None  # (m, n)
    test_diag: np.ndarray | None  # (m,)
    test_test: np.ndarray | None = None  # (m, m) when given in full


def _as_prior(prior: Any, n: int, m: int | None) -> _Prior | None:
    """Validate ``prior = (K_train_train, K_test_train, K_test_test)`` with ``K_test_test`` the
    (m, m) block or its (m,) diagonal (test parts None without a test kernel)."""
    if prior is None:
        return None
    try:
        k_xx, k_tx, k_tt = prior
    except (TypeError, ValueError):
        raise ValueError("prior must be a tuple (K_train_train, K_test_train, K_test_test) of NNGP blocks") from None
    k_xx = as_numpy(k_xx, "prior[0]", dtype=np.float64)
    if k_xx.shape != (n, n):
        raise ValueError(f"prior[0] (NNGP train-train) must have shape {(n, n)}; got {k_xx.shape}")
    if m is None:
        return _Prior(k_xx, None, None)
    k_tx = as_numpy(k_tx, "prior[1]", dtype=np.float64)
    k_tt = as_numpy(k_tt, "prior[2]", dtype=np.float64)
    if k_tx.shape != (m, n) or k_tt.shape not in ((m,), (m, m)):
        raise ValueError(
            f"prior[1] and prior[2] must have shapes {(m, n)} and {(m, m)} (or its diagonal {(m,)}); "
            f"got {k_tx.shape} and {k_tt.shape}"
        )
    if k_tt.ndim == 1:
        return _Prior(k_xx, k_tx, k_tt)
    return _Prior(k_xx, k_tx, np.diag(k_tt).copy(), k_tt)


def _prior_moments(
    prior: _Prior, eigenvectors: np.ndarray, decay: np.ndarray, gain: np.ndarray, k_test_v: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Output variances over f0 ~ GP(0, K) (Lee et al. 2019, eq. 16), per time and input, and
    the test-output covariance at the last time when the prior has the full test block.

    With Θ = V diag(λ) Vᵀ, the training outputs deviate from their mean by V diag(decay) Vᵀ f0(X)
    and the test outputs by f0(X*) − A f0(X), A = Θ_* V diag(gain) Vᵀ (linear in f0); with
    M = Vᵀ K V, E = K_*X V, B = Θ_* V, D = diag(decay), G = diag(gain):
        Var_train = rowsum((V D) M ∘ (V D)),
        Var_test  = K_** − 2 rowsum(B G ∘ E) + rowsum((B G) M ∘ (B G)),
        Cov_test  = K_** − A K_X* − K_*X Aᵀ + A K_XX Aᵀ = K_** − (B G) Eᵀ − E (B G)ᵀ + (B G) M (B G)ᵀ,
    the last only at the last time (O(m² n)); its diagonal is Var_test there.
    """
    m_matrix = eigenvectors.T @ prior.train_train @ eigenvectors
    var_train = np.empty(decay.shape)
    for i, d in enumerate(decay):
        vd = eigenvectors * d
        var_train[i] = np.sum((vd @ m_matrix) * vd, axis=1)
    if k_test_v is None or prior.test_train is None:
        return var_train, None, None
    e_matrix = prior.test_train @ eigenvectors
    var_test = np.empty((gain.shape[0], k_test_v.shape[0]))
    for i, g in enumerate(gain):
        bg = k_test_v * g
        var_test[i] = prior.test_diag - 2 * np.sum(bg * e_matrix, axis=1) + np.sum((bg @ m_matrix) * bg, axis=1)
    if prior.test_test is None:
        return var_train, var_test, None
    bg = k_test_v * gain[-1]
    cross = bg @ e_matrix.T
    covariance = prior.test_test - cross - cross.T + bg @ m_matrix @ bg.T
    return var_train, var_test, 0.5 * (covariance + covariance.T)


def squared_error_moments(residual_mean: Any, covariance: Any) -> tuple[float, float]:
    """Exact mean and variance of ``S = Σ_c ||μ_c + ε_c − y_c||²`` for independent output
    columns ``ε_c ~ N(0, C)``, given the mean residuals ``r_c = μ_c − y_c`` (columns of an
    (m, k) array, or an (m,) vector for k = 1) and the shared (m, m) covariance ``C``.

    A Gaussian quadratic form: with ``C = U diag(c) Uᵀ``, ``||r + ε||² = Σ_j c_j (z_j + a_j)²``,
    ``a = c^{-1/2} Uᵀ r``, a sum of independent scaled non-central χ²₁, so

        E S   = Σ_c ||r_c||² + k tr C,
        Var S = 2 k tr(C²) + 4 Σ_c r_cᵀ C r_c

    (e.g. Mathai & Provost 1992, "Quadratic forms in random variables", Thm 3.2b.2). The test
    loss ``S / (2m)`` of the linearized network over its random initial function has these
    moments with ``C`` = :attr:`FunctionSpaceTrajectory.cov_test` (Lee et al. 2019).
    """
    residual = np.asarray(residual_mean, dtype=np.float64)
    residual = residual.reshape(residual.shape[0], -1)
    cov = np.asarray(covariance, dtype=np.float64)
    k = residual.shape[1]
    mean = float(np.sum(residual**2) + k * np.trace(cov))
    variance = float(2 * k * np.sum(cov * cov) + 4 * np.sum(residual * (cov @ residual)))
    return mean, variance


@dataclass(frozen=True)
class _Problem:
    """Validated float64 inputs; targets and outputs are (rows, k)."""

    kernel: np.ndarray
    targets: np.ndarray
    k_test: np.ndarray | None
    f0_train: np.ndarray
    f0_test: np.ndarray | None
    y_test: np.ndarray | None
    output_shape: tuple[int, ...]
    eps: float  # machine epsilon of the kernel as given (float32 kernels carry ~1e-7 noise)


def _as_float(value: Any, name: str, *, positive: bool) -> float:
    """A finite real scalar, > 0 (``positive``) or >= 0; errors name ``name``."""
    expected = "a positive float" if positive else "a non-negative float"
    if not is_real(value):
        raise TypeError(f"{name} must be {expected}; got {type(value).__name__}")
    return real(float(value), name, low=0.0, low_open=positive, expected=expected)


def _as_test_kernel(k_test_train: Any, n: int) -> np.ndarray:
    """The (m, n) test-train kernel as float64, validated."""
    k_test = as_numpy(k_test_train, "k_test_train", dtype=np.float64)
    check_ndim(k_test, "k_test_train", (2,))
    if k_test.shape[1] != n:
        raise ValueError(
            f"k_test_train must have {n} columns to match k_train_train; got shape {k_test.shape}"
        )
    check_finite(k_test, "k_test_train")
    return k_test


def _as_outputs(value: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Outputs or targets of an exact ``shape`` as float64 (rows, k), validated."""
    array = as_numpy(value, name, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}; got shape {array.shape}")
    check_finite(array, name)
    return array.reshape(shape[0], -1)


def _problem(
    k_train_train: Any,
    y_train: Any,
    k_test_train: Any,
    f0_train: Any,
    f0_test: Any,
    y_test: Any,
) -> _Problem:
    """Convert and validate the inputs shared by the regression and dynamics functions."""
    kernel = _as_kernel(k_train_train, "k_train_train")
    given = as_numpy(k_train_train, "k_train_train").dtype
    eps = float(np.finfo(given if given.kind == "f" else np.float64).eps)
    n = kernel.shape[0]
    y = as_numpy(y_train, "y_train", dtype=np.float64)
    targets = _as_targets(y, "y_train", n, "k_train_train")
    output_shape = y.shape[1:]
    f0 = np.zeros_like(targets) if f0_train is None else _as_outputs(f0_train, "f0_train", (n, *output_shape))
    if k_test_train is None:
        for value, name in ((f0_test, "f0_test"), (y_test, "y_test")):
            if value is not None:
                raise ValueError(f"{name} was given without k_test_train; pass the (m, n) test-train kernel")
        return _Problem(kernel, targets, None, f0, None, None, output_shape, eps)
    k_test = _as_test_kernel(k_test_train, n)
    test_shape = (k_test.shape[0], *output_shape)
    f0_star = (
        np.zeros((k_test.shape[0], targets.shape[1]))
        if f0_test is None
        else _as_outputs(f0_test, "f0_test", test_shape)
    )
    y_star = None if y_test is None else _as_outputs(y_test, "y_test", test_shape)
    return _Problem(kernel, targets, k_test, f0, f0_star, y_star, output_shape, eps)


def _eigen(kernel: np.ndarray, rcond: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues, eigenvectors and the numerical-null-space mask ``|λ| ≤ rcond·max|λ|``."""
    eigenvalues, eigenvectors = np.linalg.eigh(kernel)
    null = np.abs(eigenvalues) <= rcond * np.max(np.abs(eigenvalues))
    return eigenvalues, eigenvectors, null


def _spectral_dynamics(
    k_train_train: Any,
    y_train: Any,
    k_test_train: Any,
    f0_train: Any,
    f0_test: Any,
    y_test: Any,
    *,
    factors: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]],
    t: np.ndarray,
    steps: np.ndarray | None,
    prior: Any = None,
) -> FunctionSpaceTrajectory:
    """Evaluate a spectral solution of the linearized dynamics at T times.

    ``factors(λ, n)`` receives the (a,) eigenvalues outside the null space and the sample
    count, and returns ``(decay, gain, growing)``: decay and gain of shape (T, a), growing a
    boolean (a,) marking modes whose residual grows. Null modes get decay 1 and gain 0. The
    residual is ``r = V diag(decay) Vᵀ r0`` and the test outputs
    ``f* = f0* − Θ_* V diag(gain) Vᵀ r0``, with ``r0 = f0 − y``.
    """
    if prior is not None and (f0_train is not None or f0_test is not None):
        raise ValueError("f0_train/f0_test must be None with a prior: the initial function is then random")
    problem = _problem(k_train_train, y_train, k_test_train, f0_train, f0_test, y_test)
    n = problem.kernel.shape[0]
    nngp = _as_prior(prior, n, None if problem.k_test is None else problem.k_test.shape[0])
    eigenvalues, eigenvectors, null = _eigen(problem.kernel, n * problem.eps)
    active = ~null
    decay, gain = np.ones((t.size, n)), np.zeros((t.size, n))
    decay[:, active], gain[:, active], growing = factors(eigenvalues[active], n)
    calm = np.flatnonzero(active)[~growing]  # kept modes whose residual does not grow
    if calm.size:
        lam_max = float(np.max(np.abs(eigenvalues)))
        amplification = float(np.max(np.abs(gain[:, calm]))) * lam_max
        jitter = _jitter(np.concatenate([eigenvalues[calm], [lam_max]]), amplification, n, problem.eps, stacklevel=4)
        if jitter > 0:
            eigenvalues = eigenvalues + jitter * active
            decay[:, active], gain[:, active], growing = factors(eigenvalues[active], n)

    # A diverged run (a growing mode) overflows to inf in the outputs and losses: that is the
    # answer (``diverged`` says so), not a numerical accident worth a warning.
    overflow = np.errstate(over="ignore", invalid="ignore") if np.any(growing) else contextlib.nullcontext()
    with overflow:
        return _trajectory(problem, nngp, eigenvectors, decay, gain, growing, t, steps, n)


def _trajectory(problem: "_Problem", nngp: "_Prior | None", eigenvectors: np.ndarray, decay: np.ndarray, gain: np.ndarray,
                growing: np.ndarray, t: np.ndarray, steps: np.ndarray | None, n: int) -> "FunctionSpaceTrajectory":
    """Outputs, losses and prior variances from the per-mode decay and gain factors."""
    coefficients = eigenvectors.T @ (problem.f0_train - problem.targets)  # (n, k)
    residual = eigenvectors @ (decay[:, :, None] * coefficients)  # (T, n, k)
    f_train = problem.targets + residual
    train_loss = np.sum(residual**2, axis=(1, 2)) / (2 * n)
    k = problem.targets.shape[1]

    f_test = test_loss = k_test_v = None
    if problem.k_test is not None:
        k_test_v = problem.k_test @ eigenvectors  # (m, n)
        f_test = problem.f0_test - k_test_v @ (gain[:, :, None] * coefficients)  # (T, m, k)
        if problem.y_test is not None:
            test_loss = np.sum((f_test - problem.y_test) ** 2, axis=(1, 2)) / (2 * f_test.shape[1])
        f_test = f_test.reshape(f_test.shape[:2] + problem.output_shape)
    var_train = var_test = cov_test = test_loss_std = None
    if nngp is not None:
        # Expected losses: E||f - y||^2 = ||E f - y||^2 + k * Var, every output with the NNGP prior.
        var_train, var_test, cov_test = _prior_moments(nngp, eigenvectors, decay, gain, k_test_v)
        train_loss = train_loss + k * var_train.sum(axis=1) / (2 * n)
        if test_loss is not None and var_test is not None:
            test_loss = test_loss + k * var_test.sum(axis=1) / (2 * var_test.shape[1])
        if cov_test is not None and problem.y_test is not None:
            m = problem.y_test.shape[0]
            variance = squared_error_moments(f_test[-1].reshape(m, k) - problem.y_test, cov_test)[1]
            test_loss_std = float(np.sqrt(max(variance, 0.0)) / (2 * m))  # S / (2m): std / (2m)
    return FunctionSpaceTrajectory(
        t=t,
        steps=steps,
        f_train=f_train.reshape(f_train.shape[:2] + problem.output_shape),
        f_test=f_test,
        train_loss=train_loss,
        test_loss=test_loss,
        diverged=bool(np.any(growing)),
        var_train=var_train,
        var_test=var_test,
        cov_test=cov_test,
        test_loss_std=test_loss_std,
    )


def kernel_regression(
    k_train_train: Any,
    y_train: Any,
    k_test_train: Any,
    *,
    ridge: float = 0.0,
    rcond: float | None = None,
) -> np.ndarray:
    """Kernel (ridge) regression predictions ``K_* (K + ridge·I)^{-1} y``.

    With ``ridge = 0`` the minimum-norm interpolant ``K_* K^+ y``: the pseudo-inverse is
    taken through ``K = V diag(λ) Vᵀ`` with eigenvalues ``|λ| ≤ rcond · max|λ|`` treated as
    zero. This is the infinite-time limit of gradient flow/descent on the linearized model
    from zero initial outputs (Jacot et al. 2018; Lee et al. 2019), i.e. the infinite-width
    network's prediction when ``K`` is its NTK.

    Args:
        k_train_train: (n, n) symmetric positive semi-definite kernel on the training inputs.
        y_train: (n,) or (n, k) training targets.
        k_test_train: (m, n) kernel between test and training inputs.
        ridge: non-negative ridge (Tikhonov) parameter added to the diagonal.
        rcond: relative eigenvalue cut-off of the pseudo-inverse (used when ``ridge == 0``);
            default ``n · eps`` with eps the machine epsilon of ``k_train_train``'s dtype
            (float64 for integer input), as in numpy's ``matrix_rank``: a float32 empirical
            NTK carries ~1e-7 relative round-off that must not be inverted.

    Returns:
        (m,) or (m, k) predictions, with the trailing shape of ``y_train``, float64.
    """
    ridge = _as_float(ridge, "ridge", positive=False)
    problem = _problem(k_train_train, y_train, k_test_train, None, None, None)
    n = problem.kernel.shape[0]
    cutoff = n * problem.eps if rcond is None else _as_float(rcond, "rcond", positive=False)
    eigenvalues, eigenvectors, null = _eigen(problem.kernel, cutoff)
    kept = eigenvalues + ridge if ridge > 0 else eigenvalues[~null]
    lam_max = float(np.max(np.abs(eigenvalues)))
    smallest = float(np.min(np.abs(kept))) if kept.size else lam_max
    amplification = lam_max / smallest if smallest > 0 else np.inf
    jitter = _jitter(np.concatenate([kept, [lam_max]]), amplification, n, problem.eps, stacklevel=3)
    if ridge > 0:
        inverse = 1.0 / (eigenvalues + ridge + jitter)
    else:
        inverse = np.where(null, 0.0, 1.0 / np.where(null, 1.0, eigenvalues + jitter))
    weights = eigenvectors @ (inverse[:, None] * (eigenvectors.T @ problem.targets))
    predictions = problem.k_test @ weights
    return predictions.reshape(predictions.shape[:1] + problem.output_shape)


def gd_dynamics(
    k_train_train: Any,
    y_train: Any,
    k_test_train: Any = None,
    *,
    lr: float,
    steps: Any,
    f0_train: Any = None,
    f0_test: Any = None,
    y_test: Any = None,
    prior: Any = None,
) -> FunctionSpaceTrajectory:
    """Exact full-batch gradient descent on the linearized model, at the given step counts.

    Iterating ``f_{s+1} = f_s − (η/n) Θ (f_s − y)`` and
    ``f*_{s+1} = f*_s − (η/n) Θ_* (f_s − y)`` (Lee et al. 2019) gives, with
    ``Θ = V diag(λ) Vᵀ`` and ``r_s = f_s − y``,

        r_s   = V diag((1 − ηλ/n)^s) Vᵀ r_0,
        f*_s  = f*_0 + Θ_* V diag(g_s(λ)) Vᵀ (y − f_0),   g_s(λ) = (1 − (1 − ηλ/n)^s) / λ.

    For ``ηλ/n < 1``, ``g_s`` is evaluated as ``−expm1(s · log1p(−ηλ/n)) / λ``, which tends
    to its limit ``s η / n`` as ``λ → 0`` without cancellation. The residual along an
    eigenvalue grows iff ``|1 − ηλ/n| > 1``, i.e. ``η > 2n/λ_max`` for a positive
    semi-definite kernel; ``diverged`` reports it. Evaluated for all step counts at once.

    Args:
        k_train_train: (n, n) NTK on the training inputs.
        y_train: (n,) or (n, k) training targets.
        k_test_train: optional (m, n) NTK between test and training inputs.
        lr: positive learning rate η.
        steps: non-negative int or 1-D array of ints, the step counts s to report.
        f0_train: outputs at initialization on the training inputs, shape of ``y_train``;
            default zeros.
        f0_test: (m[, k]) outputs at initialization on the test inputs; default zeros.
        y_test: (m[, k]) test targets, for ``test_loss``.
        prior: optional NNGP blocks ``(K_train_train, K_test_train, K_test_test)`` of a random
            initial function f0 ~ GP(0, K) (an uncentered network at init; Lee et al. 2019,
            eq. 16), ``K_test_test`` the (m, m) block or its (m,) diagonal. Then f0_* must be
            None, ``f_*`` are the means over f0, ``var_*`` the variances and the losses their
            expectations; with the full block also ``cov_test`` and ``test_loss_std``.

    Returns:
        A :class:`FunctionSpaceTrajectory` with ``t = lr · steps``.
    """
    lr = _as_float(lr, "lr", positive=True)
    step_array = as_numpy(steps, "steps")
    if step_array.dtype.kind not in "iu":
        raise TypeError(f"steps must be an int or a 1-D array of ints; got dtype {step_array.dtype}")
    check_ndim(step_array, "steps", (0, 1))
    step_array = np.atleast_1d(step_array).astype(np.int64)
    if np.any(step_array < 0):
        raise ValueError(f"steps must be >= 0; got minimum {step_array.min()}")
    s = step_array[:, None].astype(np.float64)

    def factors(eigenvalues: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rate = lr * eigenvalues / n  # ηλ/n
        stable_log = rate < 1
        log_factor = np.log1p(-np.where(stable_log, rate, 0.0))  # log(1 − ηλ/n) where defined
        with np.errstate(over="ignore"):  # |1 - ηλ/n| > 1: the mode grows without bound (diverged)
            decay = np.where(stable_log, np.exp(s * log_factor), np.power(1.0 - rate, s))
        one_minus_decay = np.where(stable_log, -np.expm1(s * log_factor), 1.0 - decay)
        return decay, one_minus_decay / eigenvalues, np.abs(1.0 - rate) > 1.0

    return _spectral_dynamics(
        k_train_train,
        y_train,
        k_test_train,
        f0_train,
        f0_test,
        y_test,
        factors=factors,
        t=lr * step_array.astype(np.float64),
        steps=step_array,
        prior=prior,
    )


def gradient_flow(
    k_train_train: Any,
    y_train: Any,
    k_test_train: Any = None,
    *,
    t: Any,
    f0_train: Any = None,
    f0_test: Any = None,
    y_test: Any = None,
    prior: Any = None,
) -> FunctionSpaceTrajectory:
    """Gradient flow ``df/dt = −(1/n) Θ (f − y)`` on the linearized model, in closed form.

    The continuous-time limit of :func:`gd_dynamics` at ``t = η · steps`` (Jacot et al.
    2018; Lee et al. 2019): with ``Θ = V diag(λ) Vᵀ``,

        r(t)  = V diag(exp(−λt/n)) Vᵀ r_0,
        f*(t) = f*_0 + Θ_* V diag((1 − exp(−λt/n)) / λ) Vᵀ (y − f_0),

    the gain evaluated as ``−expm1(−λt/n) / λ`` (limit ``t/n`` as ``λ → 0``). At
    ``t = inf`` the test outputs are ``f*_0 + Θ_* Θ^+ (y − f_0)``, kernel regression from
    the initial outputs (:func:`kernel_regression` with ``ridge = 0`` when ``f_0 = 0``).

    Args:
        k_train_train: (n, n) NTK on the training inputs.
        y_train: (n,) or (n, k) training targets.
        k_test_train: optional (m, n) NTK between test and training inputs.
        t: non-negative float or 1-D array of times; ``np.inf`` allowed.
        f0_train: outputs at initialization on the training inputs, shape of ``y_train``;
            default zeros.
        f0_test: (m[, k]) outputs at initialization on the test inputs; default zeros.
        y_test: (m[, k]) test targets, for ``test_loss``.
        prior: optional NNGP blocks ``(K_train_train, K_test_train, K_test_test)`` of a random
            initial function f0 ~ GP(0, K) (an uncentered network at init; Lee et al. 2019,
            eq. 16), ``K_test_test`` the (m, m) block or its (m,) diagonal. Then f0_* must be
            None, ``f_*`` are the means over f0, ``var_*`` the variances and the losses their
            expectations; with the full block also ``cov_test`` and ``test_loss_std``.

    Returns:
        A :class:`FunctionSpaceTrajectory` with ``steps=None``.
    """
    times = as_numpy(t, "t")
    if times.dtype.kind not in "iuf":
        raise TypeError(f"t must be a float or a 1-D array of floats; got dtype {times.dtype}")
    check_ndim(times, "t", (0, 1))
    times = np.atleast_1d(times).astype(np.float64)
    if np.any(np.isnan(times)):
        raise ValueError("t must not contain NaN")
    if np.any(times < 0):
        raise ValueError(f"t must be >= 0 (np.inf allowed); got minimum {times.min()}")

    def factors(eigenvalues: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        exponent = -times[:, None] * eigenvalues / n  # −λt/n
        return np.exp(exponent), -np.expm1(exponent) / eigenvalues, eigenvalues < 0

    return _spectral_dynamics(
        k_train_train,
        y_train,
        k_test_train,
        f0_train,
        f0_test,
        y_test,
        factors=factors,
        t=times,
        steps=None,
        prior=prior,
    )
