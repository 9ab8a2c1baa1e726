"""Spectral learning curves of kernel (ridge) regression (Bordelon, Canatar & Pehlevan 2020;
Canatar, Bordelon & Pehlevan 2021).

Kernel ridge regression ``f(x) = k(x)ᵀ (K + λ I)^{-1} y`` with the unnormalised Gram matrix
``K`` of P samples, targets ``y = f*(x) + ε``, ``ε ~ N(0, σ²)``. Write the kernel's Mercer
decomposition under the data distribution, ``k(x, x') = Σ_k η_k φ_k(x) φ_k(x')`` with
``E[φ_k φ_l] = δ_kl``, and the target's power in mode k, ``c_k² = E[f* φ_k]²`` (a mode with
``η_k = 0`` cannot be learned). The replica / cavity theory gives the average test error over
draws of the P samples, against the clean target:

    κ = λ + κ Σ_k η_k / (P η_k + κ)                  (self-consistent; κ > 0 unless P ≥ rank, λ = 0)
    γ = Σ_k P η_k² / (P η_k + κ)²
    E_g = (1 / (1 - γ)) [ Σ_k c_k² κ² / (P η_k + κ)² + σ² γ ]

(Canatar et al. 2021, eqs. 4-5, with their mode weights ``η_k w̄_k² = c_k²``). Target power
in modes the kernel cannot express (``η_k = 0``) enters like noise: it is amplified by
``1/(1-γ)``. Ridgeless regression with a rank-N kernel and ``σ² + Σ_{η=0} c_k² > 0`` diverges at
P = N (γ → 1: the double-descent peak). When the target is drawn from the kernel's own Gaussian
process prior (``c_k² = η_k`` on average) kernel ridge regression is the posterior mean, so the
error is smallest at ``λ* = σ²`` for every P (Canatar et al. 2021, "optimal regularization").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import brentq

from genlab._arrays import as_numpy, check_finite
from genlab._checks import is_real, real
from genlab.kernels._spectra import kernel_eigendecomposition

__all__ = ["LearningCurvePoint", "learning_curve", "spectral_inputs"]


@dataclass(frozen=True)
class LearningCurvePoint:
    """The theory at one sample size: κ, γ, the test error and its per-mode breakdown.

    Attributes:
        n: the number of training samples P.
        kappa: the solution κ of the self-consistent equation.
        gamma: γ (< 1 where the error is finite).
        test_error: E_g, the expected test MSE against the clean target (inf where γ ≥ 1).
        mode_errors: per-mode contribution ``c_k² κ² / (P η_k + κ)² / (1 - γ)``.
        noise_error: the noise term ``σ² γ / (1 - γ)``.
    """

    n: int
    kappa: float
    gamma: float
    test_error: float
    mode_errors: np.ndarray
    noise_error: float


def _check_nonneg(value: Any, name: str) -> float:
    if not is_real(value):
        raise TypeError(f"{name} must be a real number; got {type(value).__name__}")
    return real(float(value), name, low=0.0, expected="a finite number >= 0")


def solve_kappa(eigenvalues: np.ndarray, n: int, ridge: float) -> float:
    """The root κ ≥ 0 of ``κ = λ + κ Σ_k η_k / (P η_k + κ)``.

    ``F(κ) = κ - κ S(κ) - λ`` with ``S(κ) = Σ η_k / (P η_k + κ)`` is convex with ``F(0) = -λ``
    and ``F'(0) = 1 - rank/P``: a unique positive root exists when λ > 0 or P < rank; otherwise
    (ridgeless, P ≥ rank) κ = 0. Solved by Brent's method on log κ, where
    ``G(u) = 1 - S(e^u) - λ e^{-u}`` is increasing; ``κ ≤ λ + Σ η_k`` brackets it from above.
    """
    eta = eigenvalues[eigenvalues > 0]
    rank = eta.size
    if ridge == 0 and n >= rank:
        return 0.0

    def g(u: float) -> float:
        kappa = np.exp(u)
        return 1.0 - np.sum(eta / (n * eta + kappa)) - ridge / kappa

    upper = np.log(ridge + eta.sum())
    lower = np.log(ridge) if ridge > 0 else np.log(1e-9 * n * eta.min())
    if g(lower) >= 0:  # κ = λ exactly up to round-off (S(λ) ~ 0)
        return float(np.exp(lower))
    return float(np.exp(brentq(g, lower, upper, xtol=1e-14, rtol=1e-13, maxiter=500)))


def learning_curve(
    eigenvalues: Any,
    target_power: Any,
    n: Any,
    *,
    noise: float = 0.0,
    ridge: float = 0.0,
) -> list[LearningCurvePoint]:
    """Predicted test error of kernel ridge regression at each sample size in ``n``.

    Args:
        eigenvalues: (M,) kernel eigenvalues η_k ≥ 0 under the data distribution (for a Gram
            matrix of m samples, those of K/m: :func:`spectral_inputs`).
        target_power: (M,) target powers c_k² ≥ 0 in the same order.
        n: a sample size P ≥ 1 or a sequence of them.
        noise: the label-noise variance σ² of the training targets.
        ridge: the ridge λ ≥ 0 of ``(K + λ I)^{-1}`` (K unnormalised).

    Returns:
        One :class:`LearningCurvePoint` per sample size.
    """
    eta = as_numpy(eigenvalues, "eigenvalues", dtype=np.float64)
    power = as_numpy(target_power, "target_power", dtype=np.float64)
    if eta.ndim != 1 or power.shape != eta.shape:
        raise ValueError(f"eigenvalues and target_power must be 1-D of one length; got {eta.shape} and {power.shape}")
    check_finite(eta, "eigenvalues")
    check_finite(power, "target_power")
    if np.any(eta < 0) or np.any(power < 0):
        raise ValueError("eigenvalues and target_power must be >= 0")
    if not np.any(eta > 0):
        raise ValueError("eigenvalues must hold at least one positive value")
    noise, ridge = _check_nonneg(noise, "noise"), _check_nonneg(ridge, "ridge")
    sizes = np.atleast_1d(np.asarray(n))
    if sizes.ndim != 1 or not np.issubdtype(sizes.dtype, np.integer) or np.any(sizes < 1):
        raise ValueError(f"n must be a positive int or a 1-D sequence of them; got {n!r}")

    points = []
    for p in sizes.tolist():
        kappa = solve_kappa(eta, p, ridge)
        if kappa == 0.0:  # ridgeless, P >= rank: learnable modes learned, the rest stays
            learned = eta > 0
            gamma = float(learned.sum()) / p
            factors = np.where(learned, 0.0, 1.0)
        else:
            gamma = float(np.sum(p * eta**2 / (p * eta + kappa) ** 2))
            factors = (kappa / (p * eta + kappa)) ** 2
        if gamma >= 1.0 - 1e-12:
            mode_errors, noise_error, total = np.full_like(eta, np.inf), np.inf, np.inf
        else:
            mode_errors = power * factors / (1.0 - gamma)
            noise_error = noise * gamma / (1.0 - gamma)
            total = float(mode_errors.sum() + noise_error)
        points.append(LearningCurvePoint(int(p), kappa, gamma, total, mode_errors, float(noise_error)))
    return points


def spectral_inputs(k: Any, y: Any, *, rcond: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Nyström estimates of (η_k, c_k²) from a Gram matrix of m samples of the data distribution
    and the clean targets on them (Bordelon, Canatar & Pehlevan 2020): the eigenvalues of K/m and
    ``(v_kᵀ y)² / m``. Eigenvalues below ``rcond`` times the largest (round-off, or a kernel of
    rank < m) are set to 0, so the target's power there counts as unlearnable."""
    eigenvalues, eigenvectors = kernel_eigendecomposition(k)
    targets = as_numpy(y, "y", dtype=np.float64).reshape(eigenvectors.shape[0], -1)
    check_finite(targets, "y")
    power = np.sum((eigenvectors.T @ targets) ** 2, axis=1) / eigenvectors.shape[0]  # as target_eigencoefficients
    eigenvalues = np.where(eigenvalues > rcond * eigenvalues[0], eigenvalues, 0.0)
    return eigenvalues, power
