"""Entropy-SGD (Chaudhari et al. 2017, "Entropy-SGD: Biasing gradient descent into wide
valleys", ICLR 2017), following Algorithm 1 of the paper.

Entropy-SGD descends the local entropy ``F(x; gamma) = log int exp(-f(x') - gamma/2 ||x - x'||^2)
dx'``, whose gradient is ``-gamma (x - <x'>)`` with ``<x'>`` the mean of the Gibbs measure
coupled to ``x``. One outer step (Algorithm 1) estimates ``<x'>`` by L steps of stochastic
gradient Langevin dynamics (SGLD) started at ``x``:

    x', mu <- x
    for l = 1..L:
        dx' = grad f(x'; minibatch) - gamma (x - x')
        x'  <- x' - eta' dx' + sqrt(eta') * epsilon * N(0, I)
        mu  <- (1 - alpha) mu + alpha x'
    x <- x - eta * gamma (x - mu)

with the scoping ``gamma_t = gamma0 (1 + gamma1)^t`` (t = outer steps taken so far, Sec. 4.3),
``alpha = 0.75`` in the paper's experiments, SGLD step ``eta'`` (``langevin_lr``) and thermal
noise ``epsilon``. Optionally the outer update uses (Nesterov) momentum on the direction
``gamma (x - mu)``, as in their experiments: ``b <- m b + d``; ``d <- d + m b`` (Nesterov) or
``d <- b``; ``x <- x - eta d``.

Cost: one outer step evaluates L minibatch gradients (``closure`` is called L times, each
time on a new minibatch; the first call is at ``x`` itself, since ``x' = x`` there).

Where the authors' public code (github.com/ucla-vision/entropy-sgd, ``python/optim.py`` and
``entropyoptim.lua``, read for this comparison) differs from Algorithm 1:

- averaging: it updates ``mu <- 0.75 mu + 0.25 x'``, i.e. weight 0.75 on the *old* average
  (alpha = 0.25 in the paper's notation), where Algorithm 1 writes alpha = 0.75 on the new x';
- noise: it adds ``epsilon / sqrt(0.5 eta') * N(0, I)`` to the gradient before the step
  ``x' <- x' - eta' dx'``, so the noise on x' is ``sqrt(2 eta') epsilon N(0, I)``: sqrt(2) times
  the paper's ``sqrt(eta') epsilon``;
- outer step: it updates ``x <- x - eta (x - mu)`` without the factor gamma (gamma is absorbed
  in eta), with Nesterov momentum (momentum 0.9) in the PyTorch version; the Lua version
  applies its momentum to the gradient at x and then zeroes that gradient, so its step on
  x - mu carries no momentum;
- inner loop: it applies weight decay and Nesterov momentum (a buffer reset at every outer
  step) to the SGLD gradients as well; Algorithm 1's SGLD is plain;
- SGLD step: eta' = 0.1, fixed in the PyTorch version (``lp['lr']``) and the default of
  ``config.lclr`` in Lua, independent of the outer learning rate;
- scoping: the PyTorch version computes ``gamma0 (1 + gamma1)^t`` but never increments ``t``,
  so gamma stays gamma0; the Lua version increments its evaluation counter every outer step.

This module implements Algorithm 1 as written (gamma in the outer step, alpha on the new
iterate, noise ``sqrt(eta') epsilon``); momentum only on the outer step. The noise comes from
the optimizer's own ``torch.Generator`` (``seed``), so a run is reproducible and its state dict
carries the generator state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

__all__ = ["EntropySGD"]


class EntropySGD(torch.optim.Optimizer):
    """Entropy-SGD (Algorithm 1 of Chaudhari et al. 2017).

    Args:
        params: parameters or parameter groups.
        lr: outer learning rate eta > 0.
        langevin_lr: SGLD step eta' > 0 (0.1 in the paper).
        langevin_steps: L >= 1, SGLD steps (= gradient evaluations) per outer step.
        gamma: coupling gamma0 > 0 (scope).
        scoping: gamma1 >= 0; gamma_t = gamma0 (1 + gamma1)^t.
        noise: thermal noise epsilon >= 0 (0: deterministic).
        alpha: weight of the new SGLD iterate in the running average, in (0, 1] (0.75).
        momentum: outer momentum in [0, 1).
        nesterov: Nesterov form of the outer momentum.
        seed: seed of the SGLD noise.

    ``step(closure)``: ``closure()`` zeroes the gradients, draws a minibatch, computes the loss
    at the current parameters and calls ``backward()``; it is called ``langevin_steps`` times.
    Returns the loss of the first call (the loss at x).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        *,
        langevin_lr: float = 0.1,
        langevin_steps: int = 20,
        gamma: float = 0.03,
        scoping: float = 0.0,
        noise: float = 1e-4,
        alpha: float = 0.75,
        momentum: float = 0.0,
        nesterov: bool = False,
        seed: int = 0,
    ) -> None:
        checks = (
            ("lr", lr > 0), ("langevin_lr", langevin_lr > 0),
            ("langevin_steps", isinstance(langevin_steps, int) and langevin_steps >= 1),
            ("gamma", gamma > 0), ("scoping", scoping >= 0), ("noise", noise >= 0),
            ("alpha", 0 < alpha <= 1), ("momentum", 0 <= momentum < 1),
        )
        for name, ok in checks:
            if not ok:
                raise ValueError(f"EntropySGD: invalid {name} = {locals()[name]!r}")
        if nesterov and momentum == 0:
            raise ValueError("EntropySGD: nesterov needs momentum > 0")
        defaults = dict(
            lr=lr, langevin_lr=langevin_lr, langevin_steps=langevin_steps, gamma=gamma, scoping=scoping,
            noise=noise, alpha=alpha, momentum=momentum, nesterov=nesterov,
        )
        super().__init__(params, defaults)
        self.generator = torch.Generator().manual_seed(seed)

    def _normal(self, p: torch.Tensor) -> torch.Tensor:
        return torch.randn(p.shape, generator=self.generator, dtype=p.dtype).to(p.device)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        if closure is None:
            raise ValueError("EntropySGD.step needs a closure that draws a minibatch and computes its gradients")
        closure = torch.enable_grad()(closure)
        groups = [g for g in self.param_groups if g["params"]]
        steps = {g["langevin_steps"] for g in groups}
        if len(steps) > 1:
            raise ValueError("EntropySGD: langevin_steps must be the same in every param group")
        loss = None
        with torch.no_grad():
            for group in groups:
                t = group.setdefault("outer_steps", 0)
                group["gamma_t"] = group["gamma"] * (1 + group["scoping"]) ** t
                for p in group["params"]:
                    state = self.state[p]
                    state["x"] = p.detach().clone()
                    state["mu"] = p.detach().clone()
        for _ in range(steps.pop() if steps else 0):
            value = closure()
            loss = value if loss is None else loss
            with torch.no_grad():
                for group in groups:
                    eta_l, gamma, alpha = group["langevin_lr"], group["gamma_t"], group["alpha"]
                    sigma = math.sqrt(eta_l) * group["noise"]
                    for p in group["params"]:
                        state = self.state[p]
                        grad = torch.zeros_like(p) if p.grad is None else p.grad
                        dx = grad - gamma * (state["x"] - p)
                        p.sub_(eta_l * dx)
                        if sigma > 0:
                            p.add_(sigma * self._normal(p))
                        state["mu"].mul_(1 - alpha).add_(alpha * p)
        with torch.no_grad():
            for group in groups:
                m = group["momentum"]
                for p in group["params"]:
                    state = self.state[p]
                    x = state.pop("x")
                    direction = group["gamma_t"] * (x - state.pop("mu"))
                    if m > 0:
                        buf = state.get("momentum_buffer")
                        buf = direction.clone() if buf is None else buf.mul_(m).add_(direction)
                        state["momentum_buffer"] = buf
                        direction = direction + m * buf if group["nesterov"] else buf
                    p.copy_(x - group["lr"] * direction)
                group["outer_steps"] += 1
        return loss

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        out["generator_state"] = self.generator.get_state()
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state_dict = dict(state_dict)
        generator_state = state_dict.pop("generator_state", None)
        super().load_state_dict(state_dict)
        if generator_state is not None:
            self.generator.set_state(generator_state)
