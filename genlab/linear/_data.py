"""Validation of the data every solver takes: a design matrix X (n, d) and targets y (n,)."""

from __future__ import annotations

from typing import Any

import numpy as np


def check_xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)`` as float64 arrays of shapes (n, d) and (n,) (y flattened)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must have shape (n, d) and y n = {y.shape[0]} entries; got {x.shape}")
    return x, y
