"""Interpolants of least squares ``X beta = y``: the closest one to a start (where gradient
descent on the square loss of a linear model converges), the minimum-l1 one, and the per-batch
quadratics of mini-batch least squares.

GD from ``beta_0`` stays in ``beta_0 + rowspace(X)`` and converges to the interpolant closest
to ``beta_0``: ``beta_0 + X^+ (y - X beta_0)`` (the minimum-norm interpolant from zero; the
least-squares solution closest to ``beta_0`` when ``n >= d``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genlab.linear._data import check_xy

#: ``X beta = y`` counts as feasible when the least-squares residual is below this fraction of
#: ||y||: rounding of pinv is ~1e-15 relative for well-conditioned X, while label noise that
#: rules out interpolation (n > d) leaves a residual of the noise's size.
INTERPOLATION_TOL = 1e-8


def interpolable(x: Any, y: Any) -> bool:
    """Whether ``X beta = y`` has a solution (least-squares residual <= INTERPOLATION_TOL ||y||)."""
    x, y = check_xy(x, y)
    scale = max(float(np.linalg.norm(y)), 1e-300)
    return bool(np.linalg.norm(x @ (np.linalg.pinv(x) @ y) - y) <= INTERPOLATION_TOL * scale)


def min_norm_solution(x: Any, y: Any, theta0: Any = None) -> np.ndarray:
    """``theta0 + X^+ (y - X theta0)``: where GD on the square loss of a linear model from
    ``theta0`` (default 0) converges (np.linalg.pinv, so also for n >= d or rank-deficient X)."""
    x, y = check_xy(x, y)
    t0 = np.zeros(x.shape[1]) if theta0 is None else np.asarray(theta0, dtype=np.float64).reshape(-1)
    if t0.shape != (x.shape[1],):
        raise ValueError(f"theta0 must have d = {x.shape[1]} entries; got {t0.shape}")
    return t0 + np.linalg.pinv(x) @ (y - x @ t0)


def min_l1_solution(x: Any, y: Any) -> np.ndarray:
    """argmin ||beta||_1 s.t. X beta = y, as the linear program over beta = p - m, p, m >= 0."""
    from scipy.optimize import linprog

    x, y = check_xy(x, y)
    d = x.shape[1]
    result = linprog(np.ones(2 * d), A_eq=np.hstack([x, -x]), b_eq=y, bounds=(0, None), method="highs")
    if result.status != 0:
        raise ValueError(f"min-l1 linear program failed: {result.message}")
    return result.x[:d] - result.x[d:]


def batch_quadratics(x: Any, y: Any, batches: Any) -> tuple[np.ndarray, np.ndarray]:
    """Least squares per batch, L_k(w) = ||X_k w - y_k||^2 / (2 B_k): grad L_k = A_k w - c_k
    with A_k = X_k^T X_k / B_k, c_k = X_k^T y_k / B_k; returns (A (m, d, d), c (m, d))."""
    x, y = check_xy(x, y)
    index = [np.asarray(b, dtype=np.int64) for b in batches]
    if not index or any(len(b) == 0 for b in index):
        raise ValueError("batches must be a non-empty list of non-empty index arrays")
    a = np.stack([x[b].T @ x[b] / len(b) for b in index])
    c = np.stack([x[b].T @ y[b] / len(b) for b in index])
    return a, c
