"""Diagonal linear network (Woodworth, Gunasekar, Lee, Moroshko, Savarese, Golan, Soudry &
Srebro 2020, "Kernel and rich regimes in overparametrized models", COLT), depth 2.

The predictor is linear, ``f(x) = <beta, x>`` with ``beta = u * u - v * v`` (elementwise), and the
trained parameters are ``u, v`` in R^d, both initialised to ``init_scale * 1`` (so ``beta = 0`` at
init). The init scale (the paper's alpha) selects the implicit bias of gradient flow on the
square loss: min-l2 as alpha -> inf (kernel regime), min-l1 as alpha -> 0 (rich regime), the
hypentropy problem of genlab.theory.implicit_bias in between.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab._checks import integer, real


class DiagonalLinear(nn.Module):
    """``f(x) = x @ (u * u - v * v)`` as one output column; ``u = v = init_scale`` at init."""

    def __init__(self, d: int, *, init_scale: float, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        d = integer(d, "d", minimum=1, expected="a positive int")
        self.init_scale = real(init_scale, "init_scale", low=0.0, low_open=True)
        self.input_shape = (d,)
        self.u = nn.Parameter(torch.full((d,), self.init_scale, dtype=dtype))
        self.v = nn.Parameter(torch.full((d,), self.init_scale, dtype=dtype))

    @property
    def beta(self) -> torch.Tensor:
        """The linear predictor ``u * u - v * v``."""
        return self.u * self.u - self.v * self.v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.u.shape[0]:
            raise ValueError(f"x must have shape (batch, {self.u.shape[0]}); got {tuple(x.shape)}")
        return (x @ self.beta)[:, None]

    def extra_repr(self) -> str:
        return f"d={self.u.shape[0]}, init_scale={self.init_scale:.4g}"
