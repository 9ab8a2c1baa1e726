"""Sharpness-Aware Minimization (SAM, Foret et al. 2021) and its adaptive variant (ASAM, Kwon
et al. 2021), wrapping any torch.optim base optimizer.

SAM minimizes ``max_{||e|| <= rho} L(w + e)`` with the first-order solution of the inner problem,

    e(w) = rho * g / ||g||_2,        g = grad L(w)            (Foret et al. 2021, Eq. 2),

and hands the gradient at the perturbed point, ``grad L(w + e(w))``, to the base optimizer
(it drops the second-order term, their Eq. 3), which then updates the *original* ``w``.

ASAM makes the neighbourhood scale-invariant with the normalization operator
``T_w = diag(|w|) + eta I`` (Kwon et al. 2021, Eq. 8 and Sec. 4):

    e(w) = rho * T_w^2 g / ||T_w g||_2.

Here ``T_w`` is applied to every parameter tensor (weights and biases alike), and ``||.||_2``
is over all parameters of all groups: one perturbation of the whole model. With ``g = 0`` the
perturbation is 0 (the base step is then the plain step).

One SAM step costs two gradient evaluations. BatchNorm: the second (perturbed) forward pass
must not update the running statistics a second time; :func:`frozen_batchnorm_stats` switches
the running-stat updates off for that pass (the module still normalizes with the batch
statistics, as in training), and :class:`SAM` applies it when given ``model=``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

__all__ = ["SAM", "frozen_batchnorm_stats"]


@contextlib.contextmanager
def frozen_batchnorm_stats(model: nn.Module | None) -> Iterator[None]:
    """Within the block, BatchNorm layers of ``model`` in training mode normalize with the batch
    statistics but neither update ``running_mean``/``running_var`` nor count the batch in
    ``num_batches_tracked``; the previous flags are restored on exit."""
    saved = []
    if model is not None:
        for layer in model.modules():
            if isinstance(layer, nn.modules.batchnorm._BatchNorm):
                saved.append((layer, layer.track_running_stats))
                layer.track_running_stats = False  # train mode: batch stats, no buffer updates
    try:
        yield
    finally:
        for layer, flag in saved:
            layer.track_running_stats = flag


class SAM(torch.optim.Optimizer):
    """SAM / ASAM around a base optimizer.

    Args:
        params: parameters or parameter groups (groups may set their own ``rho``, ``adaptive``,
            ``eta`` and base-optimizer options).
        base_optimizer: the class of the optimizer that takes the step with the perturbed
            gradient, e.g. ``torch.optim.SGD``; it is built on this optimizer's param groups
            (one ``lr``, one scheduler for both).
        rho: neighbourhood radius >= 0 (0 makes SAM the base optimizer exactly).
        adaptive: ASAM's normalization ``T_w = |w| + eta``.
        eta: ASAM's offset (Kwon et al. use 0.01).
        model: the module whose BatchNorm running statistics must be updated only once per
            step (on the first pass); None if it has none.
        **base_kwargs: options of ``base_optimizer`` (``lr``, ``momentum``, ...).

    ``step(closure)``: ``closure()`` zeroes the gradients, recomputes the loss on the *same*
    batch and calls ``backward()``; it is called twice (at ``w`` and at ``w + e``). The loss of
    the first call is returned. A training loop that has already computed the gradient at ``w``
    can call :meth:`first_step`, recompute the gradient itself, and call :meth:`second_step`.
    The state dict holds both SAM's and the base optimizer's state (they share one dict).
    """

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type[torch.optim.Optimizer],
        *,
        rho: float = 0.05,
        adaptive: bool = False,
        eta: float = 0.01,
        model: nn.Module | None = None,
        **base_kwargs: Any,
    ) -> None:
        if not rho >= 0:
            raise ValueError(f"rho must be >= 0; got {rho!r}")
        if not eta >= 0:
            raise ValueError(f"eta must be >= 0; got {eta!r}")
        super().__init__(params, dict(rho=rho, adaptive=adaptive, eta=eta, **base_kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups  # the same group dicts
        self.base_optimizer.state = self.state
        self.model = model

    def _scale(self, group: dict[str, Any], p: torch.Tensor) -> torch.Tensor | None:
        return p.detach().abs() + group["eta"] if group["adaptive"] else None

    @torch.no_grad()
    def first_step(self) -> None:
        """Move every parameter to ``w + e(w)`` using the gradients now in ``.grad``."""
        squares = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                scale = self._scale(group, p)
                tg = p.grad if scale is None else scale * p.grad
                squares.append((tg * tg).sum())
        norm = torch.sqrt(torch.stack(squares).sum()) if squares else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if norm is None or norm == 0 or group["rho"] == 0:
                    e = torch.zeros_like(p)
                else:
                    scale = self._scale(group, p)
                    direction = p.grad if scale is None else scale * scale * p.grad
                    e = direction * (group["rho"] / norm)
                self.state[p]["sam_w"] = p.detach().clone()  # restored exactly, not by w + e - e
                p.add_(e)

    @torch.no_grad()
    def second_step(self) -> None:
        """Return to ``w`` and let the base optimizer step with the gradients now in ``.grad``
        (those at ``w + e``)."""
        for group in self.param_groups:
            for p in group["params"]:
                w = self.state[p].pop("sam_w", None)
                if w is not None:
                    p.copy_(w)
        self.base_optimizer.step()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        if closure is None:
            raise ValueError("SAM.step needs a closure that recomputes the loss and its gradients")
        closure = torch.enable_grad()(closure)
        loss = closure()
        self.first_step()
        with frozen_batchnorm_stats(self.model):
            closure()
        self.second_step()
        return loss

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.base_optimizer.param_groups = self.param_groups
        self.base_optimizer.state = self.state
