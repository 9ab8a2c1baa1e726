"""The hypentropy potential of diagonal linear networks (Woodworth, Gunasekar, Lee, Moroshko,
Savarese, Golan, Soudry & Srebro 2020, COLT, Theorem 1 with D = 2 and their parametrization
``w_+^2 - w_-^2``, ``w_+(0) = w_-(0) = alpha 1``): gradient flow on the square loss of
``beta = u*u - v*v`` from ``u_0 = v_0 = alpha 1``, if it interpolates, reaches

    argmin Q_alpha(beta)  s.t.  X beta = y,
    Q_alpha(beta) = sum_i alpha^2 q(beta_i / alpha^2),  q(z) = 2 - sqrt(4 + z^2) + z arcsinh(z / 2).

Since q'(z) = arcsinh(z / 2), the KKT conditions read ``beta = 2 alpha^2 sinh(X^T nu)`` (the same
form gradient flow produces: ``u = alpha e^{-2 s}``, ``v = alpha e^{2 s}`` with ``s = X^T int r``),
and ``nu`` minimises the strictly convex n-dimensional dual

    D(nu) = 2 alpha^2 sum_i cosh((X^T nu)_i) - <y, nu>,

whose gradient is ``X beta(nu) - y``. :func:`hypentropy_solution` minimises it by damped Newton
(exact Hessian ``X diag(2 alpha^2 cosh(X^T nu)) X^T``, Cholesky solves from scipy.linalg) until
``||X beta - y|| <= tol * ||y||``. As alpha -> inf, Q_alpha ~ ||beta||^2 / (4 alpha^2): min-l2; as
alpha -> 0, Q_alpha ~ log(1/alpha^2) ||beta||_1: min-l1 (approached slowly, ~1/log(1/alpha)).
The closed forms are sympy expressions (:func:`hypentropy_expressions`).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from genlab.linear._data import check_xy
from genlab.linear._interpolants import interpolable

#: Relative tolerance of the hypentropy dual solve: ||X beta - y|| <= DUAL_TOL * ||y||.
DUAL_TOL = 1e-10


@functools.lru_cache(maxsize=1)
def hypentropy_expressions() -> dict[str, Any]:
    """The sympy closed forms: ``"symbols"`` (z, alpha, beta), ``"hypentropy"`` q(z),
    ``"q_alpha"`` (one coordinate of Q_alpha in beta and alpha), ``"q_alpha_gradient"``
    (dQ_alpha/dbeta_i) and ``"kkt_beta"`` (beta_i as a function of z = (X^T nu)_i)."""
    import sympy as sp

    z, b = sp.symbols("z beta", real=True)
    alpha_pos = sp.Symbol("alpha", positive=True)
    q = 2 - sp.sqrt(4 + z**2) + z * sp.asinh(z / 2)
    return {
        "symbols": {"z": z, "alpha": alpha_pos, "beta": b},
        "hypentropy": q,
        "q_alpha": alpha_pos**2 * q.subs(z, b / alpha_pos**2),
        "q_alpha_gradient": sp.asinh(b / (2 * alpha_pos**2)),
        "kkt_beta": 2 * alpha_pos**2 * sp.sinh(z),  # z = (X^T nu)_i
    }


@functools.lru_cache(maxsize=1)
def _q_alpha_numeric() -> Any:
    import sympy as sp

    expressions = hypentropy_expressions()
    symbols = expressions["symbols"]
    return sp.lambdify((symbols["beta"], symbols["alpha"]), expressions["q_alpha"], modules="numpy")


def check_alpha(alpha: Any) -> float:
    """``alpha`` as a float, which must be finite and > 0."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite float > 0; got {alpha!r}")
    return float(alpha)


def q_alpha(beta: Any, alpha: float) -> float:
    """The hypentropy potential Q_alpha(beta) = sum_i alpha^2 q(beta_i / alpha^2)."""
    return float(np.sum(_q_alpha_numeric()(np.asarray(beta, dtype=np.float64), check_alpha(alpha))))


def hypentropy_solution(x: Any, y: Any, alpha: float, *, tol: float = DUAL_TOL, max_iter: int = 500) -> np.ndarray:
    """argmin Q_alpha(beta) s.t. X beta = y, via the dual (see the module docstring).

    Damped Newton on D(nu) (Cholesky solves with scipy.linalg, Armijo backtracking on D, or on
    the residual once D is flat to rounding), from nu = 0, until ||X beta - y|| <= tol ||y||.
    Raises ValueError if ``X beta = y`` is infeasible or the solve misses ``tol``.
    """
    from scipy.linalg import cho_factor, cho_solve

    x, y = check_xy(x, y)
    a2 = 2.0 * check_alpha(alpha) ** 2
    scale = max(float(np.linalg.norm(y)), 1e-300)
    if not interpolable(x, y):
        raise ValueError("y must be interpolable (X beta = y feasible) for the hypentropy problem")

    def dual(nu: np.ndarray) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            return float(a2 * np.sum(np.cosh(x.T @ nu)) - y @ nu)

    nu = np.zeros(x.shape[0])
    value = dual(nu)
    for _ in range(max_iter):
        z = x.T @ nu
        residual = x @ (a2 * np.sinh(z)) - y  # the dual gradient
        res_norm = float(np.linalg.norm(residual))
        if res_norm <= tol * scale:
            return a2 * np.sinh(z)
        hessian = (x * (a2 * np.cosh(z))) @ x.T
        step = -cho_solve(cho_factor(hessian + 1e-300 * np.eye(len(nu))), residual)
        slope = float(residual @ step)
        t = min(1.0, 10.0 / max(float(np.max(np.abs(x.T @ step))), 1e-300))  # cosh grows e-fold per unit
        t_min, trial, trial_value = 1e-12 * t, nu, value
        while t > t_min:
            trial = nu + t * step
            trial_value = dual(trial)
            if np.isfinite(trial_value) and trial_value <= value + 1e-4 * t * slope:
                break
            if np.isfinite(trial_value) and abs(trial_value - value) <= 1e-13 * max(abs(value), 1.0):
                trial_res = float(np.linalg.norm(x @ (a2 * np.sinh(x.T @ trial)) - y))
                if trial_res < res_norm:
                    break
            t *= 0.5
        nu, value = trial, trial_value
    beta = a2 * np.sinh(x.T @ nu)
    raise ValueError(f"hypentropy dual did not converge for alpha={alpha!r}: relative residual {np.linalg.norm(x @ beta - y) / scale:.2e}")


def diag_sharpness(x: Any, beta: Any, alpha: float) -> float:
    """Largest eigenvalue of the Hessian of the MSE ``||X (u*u - v*v) - y||^2 / (2n)`` in
    ``(u, v)`` at the interpolant ``beta`` that gradient flow reaches from ``u = v = alpha``.

    The flow keeps ``u_i v_i = alpha^2`` (d(u_i v_i)/dt = 0), so there ``u_i^2 + v_i^2 =
    sqrt(beta_i^2 + 4 alpha^4)``; at zero residual the Hessian is the Gauss-Newton ``J^T J / n``,
    ``J = X [diag(2u), -diag(2v)]``, whose nonzero spectrum is that of
    ``X diag(4 sqrt(beta^2 + 4 alpha^4)) X^T / n``.
    """
    x = np.asarray(x, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64).reshape(-1)
    weights = 4.0 * np.sqrt(beta**2 + 4.0 * check_alpha(alpha) ** 4)
    return float(np.linalg.eigvalsh((x * weights) @ x.T / x.shape[0])[-1])
