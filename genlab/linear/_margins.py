"""The max-margin direction of separable +-1 labels (Soudry, Hoffer, Nacson, Gunasekar & Srebro
2018, JMLR, Theorem 3): for the logistic loss on data linearly separable through the origin,
``w(t) / ||w(t)||`` of gradient descent converges to the hard-margin SVM direction

    w_svm = argmin ||w||  s.t.  y_i <w, x_i> >= 1   (no bias),

and the normalised margin ``min_i y_i <w, x_i> / ||w||`` to ``1 / ||w_svm||``. ``w_svm`` is
solved from its dual QP ``max_{a >= 0} sum a - 1/2 ||sum_i a_i y_i x_i||^2`` (L-BFGS-B), then
polished exactly on the support vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genlab.linear._data import check_xy


def separable(x: Any, y: Any) -> bool:
    """Whether the +-1 labels ``y`` are linearly separable through the origin: some w has
    y_i <w, x_i> >= 1 for all i (a feasibility LP, scipy.optimize.linprog / HiGHS). False for
    labels other than +-1."""
    from scipy.optimize import linprog

    x, y = check_xy(x, y)
    if not np.all(np.abs(y) == 1):  # labels are stored exactly as +-1.0
        return False
    feasible = linprog(np.zeros(x.shape[1]), A_ub=-(x * y[:, None]), b_ub=-np.ones(len(y)), bounds=(None, None), method="highs")
    return bool(feasible.status == 0)


def max_margin_direction(x: Any, y: Any) -> np.ndarray:
    """The hard-margin SVM through the origin: argmin ||w|| s.t. y_i <w, x_i> >= 1.

    Raises ValueError if the data are not linearly separable through the origin.
    """
    from scipy.optimize import minimize

    x, y = check_xy(x, y)
    if not np.all(np.abs(y) == 1):
        raise ValueError("y must have values in {-1, +1} for the max-margin direction")
    if not separable(x, y):
        raise ValueError("the data are not linearly separable through the origin: no max-margin direction")
    z = x * y[:, None]
    gram = z @ z.T

    def dual(a: np.ndarray) -> tuple[float, np.ndarray]:
        g = gram @ a
        return float(0.5 * a @ g - a.sum()), g - 1.0

    n = len(y)
    result = minimize(dual, np.zeros(n), jac=True, method="L-BFGS-B", bounds=[(0, None)] * n,
                      options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000})
    a = result.x
    # Polish: on the support set S the margins are exactly 1: Z_S Z_S^T a_S = 1.
    for threshold in (1e-8, 1e-6, 1e-4):
        support = a > threshold * max(a.max(), 1e-300)
        a_s = np.linalg.lstsq(gram[np.ix_(support, support)], np.ones(support.sum()), rcond=None)[0]
        w = z[support].T @ a_s
        if np.all(a_s > 0) and np.all(z @ w >= 1 - 1e-9):
            return w
    w = z.T @ a
    if np.all(z @ w >= 1 - 1e-6):
        return w
    raise ValueError("max-margin dual did not converge")


def margin_of(w: Any, x: Any, y: Any) -> float:
    """min_i y_i <w, x_i> / ||w||_2 (negative when some point is misclassified)."""
    x, y = check_xy(x, y)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(w))
    return float(np.min(y * (x @ w)) / norm) if norm > 0 else 0.0


def cosine(a: Any, b: Any) -> float:
    """<a, b> / (||a|| ||b||), the cosine of the angle between two vectors."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
