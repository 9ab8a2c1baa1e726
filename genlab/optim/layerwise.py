"""Layer-wise trust-ratio optimizers for large batches: LARS (You, Gitman & Ginsburg 2017,
"Large batch training of convolutional networks", Algorithm 1) and LAMB (You et al. 2020,
"Large batch optimization for deep learning: training BERT in 76 minutes", Algorithm 2).

A "layer" is one parameter tensor (a weight matrix and its bias are two layers).

LARS, per layer l with global learning rate gamma_t, trust coefficient eta, weight decay beta
and momentum m:

    lambda_l = eta ||w_l|| / (||grad_l|| + beta ||w_l||)          (local learning rate)
    v_l <- m v_l + gamma_t lambda_l (grad_l + beta w_l);   w_l <- w_l - v_l

LAMB, per layer, with Adam moments (bias-corrected) and weight decay lambda:

    m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
    r = (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    w_l <- w_l - gamma_t ||w_l|| / ||r_l + lambda w_l|| (r_l + lambda w_l)

(the paper's scaling function phi is the identity here). Where ||w_l|| or the update's norm is
0 (e.g. a bias initialised at 0), the trust ratio is taken as 1, as is common practice; LARS then
steps with ``eta * gamma_t`` on that layer (lambda_l = eta), LAMB with ``gamma_t``. A param group
with ``trust=False`` skips the ratio (lambda_l = 1 for LARS, ratio 1 for LAMB), e.g. for biases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["LAMB", "LARS"]


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """numerator / denominator where both are > 0, else 1."""
    ok = (numerator > 0) & (denominator > 0)
    return torch.where(ok, numerator / torch.where(ok, denominator, torch.ones_like(denominator)), torch.ones_like(numerator))


class LARS(torch.optim.Optimizer):
    """LARS (Algorithm 1 of You et al. 2017).

    Args:
        params: parameters or parameter groups.
        lr: global learning rate gamma > 0 (scheduled by an LR scheduler like any ``lr``).
        momentum: m in [0, 1).
        weight_decay: beta >= 0 (inside the trust ratio and the update, as in the paper).
        trust_coefficient: eta > 0 (0.001 in the paper).
        trust: apply the trust ratio in this group (False: plain momentum SGD).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        *,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = 0.001,
        trust: bool = True,
    ) -> None:
        if not lr > 0 or not 0 <= momentum < 1 or not weight_decay >= 0 or not trust_coefficient > 0:
            raise ValueError(
                f"LARS: need lr > 0, momentum in [0, 1), weight_decay >= 0, trust_coefficient > 0; "
                f"got {lr!r}, {momentum!r}, {weight_decay!r}, {trust_coefficient!r}"
            )
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, trust_coefficient=trust_coefficient, trust=trust)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta, m = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["trust"]:
                    w_norm = torch.linalg.vector_norm(p)
                    local = group["trust_coefficient"] * _ratio(w_norm, torch.linalg.vector_norm(g) + beta * w_norm)
                else:
                    local = torch.ones((), dtype=p.dtype, device=p.device)
                update = (g + beta * p) * (group["lr"] * local)
                state = self.state[p]
                if m > 0:
                    buf = state.get("momentum_buffer")
                    buf = update.clone() if buf is None else buf.mul_(m).add_(update)
                    state["momentum_buffer"] = buf
                    update = buf
                p.sub_(update)
        return loss


class LAMB(torch.optim.Optimizer):
    """LAMB (Algorithm 2 of You et al. 2020).

    Args:
        params: parameters or parameter groups.
        lr: learning rate gamma > 0.
        betas: (b1, b2) in [0, 1).
        eps: added to sqrt(v) (1e-6 in the paper).
        weight_decay: lambda >= 0 (decoupled: added to the Adam direction r).
        trust: apply the trust ratio in this group (False: AdamW-like step).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        *,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        trust: bool = True,
    ) -> None:
        b1, b2 = betas
        if not lr > 0 or not 0 <= b1 < 1 or not 0 <= b2 < 1 or not eps >= 0 or not weight_decay >= 0:
            raise ValueError(f"LAMB: need lr > 0, betas in [0, 1), eps >= 0, weight_decay >= 0; got {lr!r}, {betas!r}, {eps!r}, {weight_decay!r}")
        super().__init__(params, dict(lr=lr, betas=(b1, b2), eps=eps, weight_decay=weight_decay, trust=trust))

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                state["exp_avg"].mul_(b1).add_((1 - b1) * p.grad)
                state["exp_avg_sq"].mul_(b2).add_((1 - b2) * p.grad * p.grad)
                m_hat = state["exp_avg"] / (1 - b1**t)
                v_hat = state["exp_avg_sq"] / (1 - b2**t)
                direction = m_hat / (v_hat.sqrt() + group["eps"]) + group["weight_decay"] * p
                if group["trust"]:
                    ratio = _ratio(torch.linalg.vector_norm(p), torch.linalg.vector_norm(direction))
                else:
                    ratio = torch.ones((), dtype=p.dtype, device=p.device)
                p.sub_(direction * (group["lr"] * ratio))
        return loss
