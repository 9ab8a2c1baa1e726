"""The baselines: local SGD (periodic model averaging) and data-parallel SGD.

- Local SGD (Stich 2019, "Local SGD converges fast and communicates little"; Lin et al. 2020):
  each worker takes ``tau`` SGD steps on its own minibatches, then all workers replace their
  parameters by the average ``x_i <- (1/p) sum_j x_j`` (one all-reduce per round).
- Data-parallel SGD (synchronous minibatch SGD): every step all-reduces the gradients,
  ``x <- x - eta (1/p) sum_j g_j(x)``, so all workers hold the same parameters; it is one SGD
  run with a ``p`` times larger batch. Its rounds are counted every ``tau`` steps for logging
  only; it communicates at every step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from genlab.optim._distributed import ParallelOptimizer, all_reduce_sum, set_flat_params, world_size

__all__ = ["DataParallelSGD", "LocalSGD", "average"]


def average(workers: Sequence[torch.Tensor]) -> torch.Tensor:
    """The mean of the worker vectors (the reference for the all-reduce average)."""
    total = workers[0].clone()
    for x in workers[1:]:
        total = total + x
    return total / len(workers)


class LocalSGD(ParallelOptimizer):
    """Local SGD: ``tau`` local steps, then parameter averaging (see the module docstring)."""

    def __init__(self, params: Iterable[torch.Tensor], *, lr: float, tau: int = 1) -> None:
        super().__init__(params, lr=lr, tau=tau)

    @torch.no_grad()
    def communicate(self, round_loss: float) -> None:
        x = self.vector()
        mean = all_reduce_sum(x.clone()) / world_size()
        self.spread = self._mean_distance(x, mean)
        self._center = mean
        set_flat_params(self._params(), mean)


class DataParallelSGD(ParallelOptimizer):
    """Synchronous data-parallel SGD: gradients averaged over workers at every step."""

    def __init__(self, params: Iterable[torch.Tensor], *, lr: float, tau: int = 1) -> None:
        super().__init__(params, lr=lr, tau=tau)
        self.communications = 0

    @torch.no_grad()
    def _reduce_gradients(self) -> None:
        p = world_size()
        grads = [q.grad for q in self._params() if q.grad is not None]
        if p > 1 and grads:
            flat = torch.cat([g.reshape(-1) for g in grads])
            all_reduce_sum(flat)
            flat /= p
            offset = 0
            for g in grads:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()
        self.communications += 1

    @torch.no_grad()
    def communicate(self, round_loss: float) -> None:
        x = self.vector()
        mean = all_reduce_sum(x.clone()) / world_size()
        self.spread = self._mean_distance(x, mean)  # 0 up to rounding: all workers take the same steps
        self._center = x
