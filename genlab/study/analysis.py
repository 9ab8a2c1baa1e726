"""Small analysis functions over study results: scaling exponents and crossover points.

Pure functions on arrays (no I/O); tests and paper recipes use them on ``Results.rows``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genlab._arrays import as_numpy


def loglog_slope(x: Any, y: Any) -> float:
    """Least-squares slope of log y against log x (the exponent p of y ~ x^p)."""
    xs, ys = as_numpy(x, "x", dtype=float), as_numpy(y, "y", dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1 or xs.size < 2:
        raise ValueError(f"x and y must be 1-D of the same length >= 2; got shapes {xs.shape} and {ys.shape}")
    if np.any(xs <= 0) or np.any(ys <= 0):
        raise ValueError("x and y must be positive for a log-log slope")
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def crossover(x: Any, y: Any, threshold: float) -> float:
    """The x at which a decreasing y first falls below ``threshold``, interpolated linearly in
    log x and log y between the two bracketing points (e.g. the lazy/rich crossover alpha* where
    the NTK drift falls below its threshold; Geiger et al. 2020). NaN if y never crosses."""
    xs, ys = as_numpy(x, "x", dtype=float), as_numpy(y, "y", dtype=float)
    order = np.argsort(xs)
    xs, ys = np.log(xs[order]), np.log(ys[order])
    level = np.log(threshold)
    for i in range(len(xs) - 1):
        if ys[i] >= level > ys[i + 1]:
            fraction = (ys[i] - level) / (ys[i] - ys[i + 1])
            return float(np.exp(xs[i] + fraction * (xs[i + 1] - xs[i])))
    return float("nan")


def kendall_tau(x: Any, y: Any) -> float:
    """Kendall's rank correlation tau-b of two 1-D samples (scipy.stats.kendalltau), the
    statistic Jiang et al. 2020 use to rank generalization measures against the observed gap.
    NaN pairs are dropped."""
    from scipy.stats import kendalltau

    xs, ys = as_numpy(x, "x", dtype=float), as_numpy(y, "y", dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length; got shapes {xs.shape} and {ys.shape}")
    keep = np.isfinite(xs) & np.isfinite(ys)
    if keep.sum() < 3:
        raise ValueError(f"kendall_tau needs at least 3 finite pairs; got {int(keep.sum())}")
    return float(kendalltau(xs[keep], ys[keep]).statistic)
