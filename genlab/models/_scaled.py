"""Output scale alpha: the lazy / rich knob of Chizat, Oyallon & Bach 2019 ("On lazy training").

The scaled model is ``g(x; theta) = alpha * (f(x; theta) - f(x; theta_0))`` trained on the loss
``L_alpha(theta) = (1 / alpha^2) * loss(g(x; theta), y)``. Centering makes ``g = 0`` at init for any
alpha; the 1/alpha^2 factor makes the function-space dynamics at linear order independent of
alpha (the NTK of ``g`` is ``alpha^2 Theta`` and the gradient carries ``1/alpha^2``), so to reach a
given change of ``g`` the parameters move by O(1/alpha): large alpha is the lazy (kernel)
regime, small alpha the rich (feature-learning) regime.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from genlab._checks import real


class OutputScaled(nn.Module):
    """``alpha * (module(x) - module_0(x))`` with ``module_0`` a frozen copy of ``module`` at init.

    Train on ``loss_scale * loss(output, y)`` with ``loss_scale = 1 / alpha**2``. The frozen
    copy's parameters have ``requires_grad=False``, so optimizers and the empirical NTK see only
    the trained ones.
    """

    def __init__(self, module: nn.Module, alpha: float) -> None:
        super().__init__()
        self.alpha = real(alpha, "alpha", low=0.0, low_open=True)
        self.module = module
        self.initial = copy.deepcopy(module).requires_grad_(False)

    @property
    def loss_scale(self) -> float:
        """The factor ``1 / alpha^2`` of the training loss."""
        return 1.0 / self.alpha**2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            reference = self.initial(x)
        return self.alpha * (self.module(x) - reference)
