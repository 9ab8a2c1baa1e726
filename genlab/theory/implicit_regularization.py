"""SGD's implicit regularizer (mirrors genlab.empirical.implicit_regularization): the modified
loss whose gradient flow the mean SGD iterate follows.

Smith, Dherin, Barrett & De 2021, ICLR, "On the origin of implicit regularization in stochastic
gradient descent": over one epoch of m mini-batches (a fixed partition, visited in a uniformly
random order), the MEAN SGD iterate follows, to O(m^3 eta^3), gradient flow for time m eta on the
modified loss

    L_SGD(w) = L(w) + (eta / (4 m)) sum_k ||grad L_k(w)||^2,

while gradient flow on L itself is off by O(m^2 eta^2). :func:`sgd_modified_flow` solves that
flow exactly for least squares (a linear ODE: matrix exponential of the augmented system), to be
compared with the mean over all m! orders of an epoch of SGD
(genlab.empirical.implicit_regularization.sgd_epoch_mean). The closed form of the modified loss
is a sympy expression (``expression``, ``latex``), as in genlab.theory.landscape.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from genlab.linear import batch_quadratics


@functools.lru_cache(maxsize=1)
def _expressions() -> dict[str, Any]:
    import sympy as sp

    return {
        # L + (eta / 4) G with G = (1/m) sum_k ||grad L_k||^2, the mean batch-gradient norm
        "sgd_modified_loss": sp.Symbol("L") + sp.Symbol("eta", positive=True) / 4 * sp.Symbol("G", nonnegative=True),
    }


_NAMES = ("sgd_modified_loss",)


def expression(name: str) -> Any:
    """The sympy expression ``name``: "sgd_modified_loss" (L + eta G / 4, G the mean squared
    batch-gradient norm)."""
    if name not in _NAMES:
        raise ValueError(f"name must be one of {', '.join(map(repr, _NAMES))}; got {name!r}")
    return _expressions()[name]


def latex(name: str) -> str:
    """The closed form ``name`` as LaTeX (see :func:`expression`)."""
    import sympy as sp

    return sp.latex(expression(name))


def sgd_modified_flow(x: Any, y: Any, batches: Any, w0: Any, lr: float, *, modified: bool = True) -> np.ndarray:
    """Gradient flow for time ``m * lr`` (one epoch) from ``w0`` on L_SGD (``modified=True``) or
    on L = mean_k L_k, for least squares split into the mini-batches ``batches``.

    grad L_SGD = M w - v with M = A + (lr / 2m) sum_k A_k^2, v = c + (lr / 2m) sum_k A_k c_k
    (A, c the batch means); the flow is exp(t [[-M, v], [0, 0]]) applied to (w0, 1).
    """
    from scipy.linalg import expm

    a, c = batch_quadratics(x, y, batches)
    m, d = c.shape
    w0 = np.asarray(w0, dtype=np.float64).reshape(-1)
    if w0.shape != (d,):
        raise ValueError(f"w0 must have d = {d} entries; got {w0.shape}")
    big_m, v = a.mean(0), c.mean(0)
    if modified:
        big_m = big_m + lr / (2 * m) * np.einsum("kij,kjl->il", a, a)
        v = v + lr / (2 * m) * np.einsum("kij,kj->i", a, c)
    generator = np.zeros((d + 1, d + 1))
    generator[:d, :d], generator[:d, d] = -big_m, v
    return (expm(m * lr * generator) @ np.append(w0, 1.0))[:d]
