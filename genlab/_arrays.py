"""Array conversion and shape validation shared by every genlab module.

Public functions take numpy, torch or jax arrays; they convert with
:func:`as_numpy` and validate with the ``check_*`` helpers, whose messages name
the offending argument and what was expected.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def as_numpy(x: Any, name: str, *, dtype: np.dtype | type | None = None) -> np.ndarray:
    """Return ``x`` (numpy, torch or jax array, or nested sequence) as a numpy array.

    Raises ``TypeError`` naming ``name`` when ``x`` is not array-like or not numeric.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x) if dtype is None else np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric array; got {type(x).__name__} ({exc})") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric (real) array; got dtype {arr.dtype}")
    return arr


def check_ndim(arr: np.ndarray, name: str, ndims: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``arr.ndim`` is one of ``ndims``."""
    if arr.ndim not in ndims:
        allowed = " or ".join(str(d) for d in ndims)
        raise ValueError(f"{name} must have {allowed} dimensions; got shape {arr.shape}")


def check_square(arr: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` unless ``arr`` is a square matrix."""
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square (n, n) matrix; got shape {arr.shape}")


def check_rows(arr: np.ndarray, name: str, n: int, other: str) -> None:
    """Raise ``ValueError`` unless ``arr`` has ``n`` rows (the size of ``other``)."""
    if arr.shape[0] != n:
        raise ValueError(f"{name} must have {n} rows to match {other}; got shape {arr.shape}")


def check_finite(arr: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` if ``arr`` holds NaN or infinite entries."""
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
