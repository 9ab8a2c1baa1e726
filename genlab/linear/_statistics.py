"""Statistics of a linear predictor ``f(x) = <beta, x>`` that both sides report: norms,
recovery of a planted sparse target, test squared error and sign error.

``y`` arrays of targets here have shape (m, 1) (one output), as the tasks store them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genlab.linear._data import check_xy


def l1_norm(beta: Any) -> float:
    """||beta||_1 = sum_i |beta_i|."""
    return float(np.abs(beta).sum())


def l2_norm(beta: Any) -> float:
    """||beta||_2."""
    return float(np.linalg.norm(beta))


def planted_beta(x_test: Any, y_test: Any) -> np.ndarray | None:
    """The target's linear coefficients, recovered from the clean test set (the tasks' test
    targets are noiseless): least squares, returned only if it fits to 1e-8 and n_test >= d."""
    x, y = check_xy(x_test, y_test)
    if x.shape[0] < x.shape[1]:
        return None
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    return beta if np.linalg.norm(x @ beta - y) <= 1e-8 * max(np.linalg.norm(y), 1e-300) else None


def support_fraction(beta: Any, beta_star: Any) -> float:
    """Fraction of supp(beta*) among the k = |supp(beta*)| largest |beta_i|."""
    beta, beta_star = np.abs(np.asarray(beta).reshape(-1)), np.asarray(beta_star).reshape(-1)
    support = np.flatnonzero(np.abs(beta_star) > 1e-9 * np.abs(beta_star).max())
    top = np.argsort(-beta, kind="stable")[: len(support)]
    return float(len(np.intersect1d(top, support)) / len(support))


def planted_support_recovery(beta: Any, x_test: Any, y_test: Any) -> float | None:
    """:func:`support_fraction` of ``beta`` against the planted beta* that the clean test set
    determines (:func:`planted_beta`); None when it does not."""
    star = planted_beta(x_test, y_test)
    return None if star is None else support_fraction(beta, star)


def mean_squared_error(beta: Any, x: Any, y: Any) -> float:
    """Mean over the m points of (<beta, x_i> - y_i)^2, for ``y`` of shape (m, 1)."""
    return float(np.mean((x @ beta - y[:, 0]) ** 2))


def sign_error(beta: Any, x: Any, y: Any) -> float:
    """Fraction of the m points where sign(<beta, x_i>) differs from sign(y_i), ``y`` (m, 1)."""
    return float(np.mean(np.sign(x @ beta) != np.sign(y[:, 0])))
