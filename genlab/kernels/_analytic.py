"""Infinite-width kernels of an ArchSpec through neural-tangents (Novak et al. 2020).

``analytic_kernel`` evaluates ``kernel_fn`` of ``spec.to_stax(width)`` jitted, on blocks of rows
and columns so that the working memory does not grow with n^2 times the spatial size; the
blocks are padded to one shape so that XLA compiles once per (spec, block shape, dtype).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from genlab._arrays import as_numpy, check_finite
from genlab.models._spec import ArchSpec, SpecError, check_positive_int

GETS = ("ntk", "nngp")

#: Elements of the largest intermediate a kernel block may hold (float32: 1 GiB).
BLOCK_ELEMENT_BUDGET = 2**28


@functools.lru_cache(maxsize=64)
def _jitted_kernel_fn(spec: ArchSpec, width: int | None, get: str) -> Any:
    import jax

    kernel_fn = spec.to_stax(width)[2]
    return jax.jit(lambda a, b: kernel_fn(a, b, get))


def default_block_size(spec: ArchSpec, input_shape: tuple[int, ...]) -> int:
    """Rows per block: neural-tangents holds per-pair spatial covariances, ``P`` entries per pair
    for a flattened readout and ``P^2`` for global average pooling (P = number of positions)."""
    positions = int(np.prod(input_shape[:-1])) if spec.kind != "fc" else 1
    per_pair = positions**2 if spec.pooling == "global_avg" else positions
    return int(np.clip(np.sqrt(BLOCK_ELEMENT_BUDGET / (per_pair * 8)), 1, 2048))


def analytic_kernel(
    spec: ArchSpec,
    x1: Any,
    x2: Any = None,
    *,
    get: str = "ntk",
    width: int | None = None,
    block_size: int | None = None,
) -> np.ndarray:
    """The infinite-width NTK or NNGP Gram matrix ``K[i, j] = k(x1[i], x2[j])`` of ``spec``.

    Args:
        spec: the architecture.
        x1: inputs of shape ``(n1, *input_shape)`` (channels-last for conv kinds).
        x2: inputs of shape ``(n2, *input_shape)``; None means ``x1`` (the symmetric Gram,
            computed on the upper block triangle and mirrored).
        get: "ntk" (Jacot et al. 2018) or "nngp" (Neal 1996; Lee et al. 2018).
        width: needed for parametrization "standard", whose NTK scales with the widths
            (Sohl-Dickstein et al. 2020); ignored by the kernel of "ntk" and "mup".
        block_size: rows/columns per block; default from :func:`default_block_size`.

    Returns:
        ``(n1, n2)`` array, float64 when ``x1`` is float64 (computed with jax x64 enabled), else
        float32. For "mup" only the NNGP exists (the muP NTK evolves during training).
    """
    if not isinstance(spec, ArchSpec):
        raise TypeError(f"spec must be an ArchSpec; got {type(spec).__name__}")
    if get not in GETS:
        raise ValueError(f"get must be one of {GETS}; got {get!r}")
    if get == "ntk" and spec.parametrization == "mup":
        raise SpecError(
            "parametrization 'mup' has no fixed NTK limit (its features move by O(1) and the NTK evolves, "
            "Yang & Hu 2021); use get='nngp' for its kernel at initialisation"
        )
    if width is not None:
        check_positive_int(width, "width")
    a = _check_inputs(spec, x1, "x1")
    b = a if x2 is None else _check_inputs(spec, x2, "x2")
    if b.shape[1:] != a.shape[1:]:
        raise ValueError(f"x2 must have per-sample shape {a.shape[1:]} to match x1; got {b.shape[1:]}")
    dtype = np.float64 if a.dtype == np.float64 else np.float32
    block = check_positive_int(block_size, "block_size") if block_size is not None else default_block_size(spec, a.shape[1:])
    # The kernel of "ntk"/"mup" does not depend on the width: one compiled function serves all.
    # For "standard" with width None, to_stax raises the message naming the missing width.
    fn = _jitted_kernel_fn(spec, width if spec.parametrization == "standard" else None, get)

    args = (fn, a.astype(dtype), None if x2 is None else b.astype(dtype), block, dtype)
    if dtype == np.float64:
        from jax.experimental import enable_x64

        with enable_x64():
            return _blocked(*args)
    return _blocked(*args)


def _check_inputs(spec: ArchSpec, x: Any, name: str) -> np.ndarray:
    arr = as_numpy(x, name)
    if arr.ndim < 2 or arr.shape[0] < 1:
        raise ValueError(f"{name} must have shape (n, *input_shape) with n >= 1; got {arr.shape}")
    spec.check_input_shape(arr.shape[1:], f"{name}.shape[1:]")
    check_finite(arr, name)
    return arr


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    """Pad ``x`` to ``rows`` rows by repeating its last row (keeps every padded row a valid input)."""
    if x.shape[0] == rows:
        return x
    return np.concatenate([x, np.repeat(x[-1:], rows - x.shape[0], axis=0)])


def _blocked(fn: Any, a: np.ndarray, b: np.ndarray | None, block: int, dtype: type) -> np.ndarray:
    symmetric = b is None
    b = a if symmetric else b
    n1, n2 = a.shape[0], b.shape[0]
    rows, cols = min(block, n1), min(block, n2)
    out = np.empty((n1, n2), dtype=dtype)
    for i in range(0, n1, rows):
        ai = _pad_rows(a[i : i + rows], rows)
        for j in range(i if symmetric else 0, n2, cols):
            bj = _pad_rows(b[j : j + cols], cols)
            k = np.asarray(fn(ai, bj), dtype=dtype)[: min(rows, n1 - i), : min(cols, n2 - j)]
            out[i : i + k.shape[0], j : j + k.shape[1]] = k
            if symmetric and j != i:
                out[j : j + k.shape[1], i : i + k.shape[0]] = k.T
    return out
