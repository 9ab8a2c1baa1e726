"""Elastic Averaging SGD (Zhang, Choromanska & LeCun 2015, "Deep learning with Elastic Averaging SGD").

``p`` workers with parameters ``x_i`` and a center variable ``x~`` minimise
``sum_i f(x_i) + (rho/2) sum_i ||x_i - x~||^2``. Each worker takes ``tau`` local SGD steps
``x_i <- x_i - eta g_i(x_i)``; then the elastic exchange with ``alpha = eta * rho``:

- synchronous (the paper's Eq. 5-6, every worker against the same center):
  ``x_i <- x_i - alpha (x_i - x~)`` for every ``i`` and ``x~ <- x~ + alpha sum_i (x_i - x~)``,
  both with the values before the exchange;
- asynchronous-style (the paper's Algorithm 1, asynchronous EASGD with communication period
  ``tau``): workers meet the center one after the other, here in rank order, so that worker ``i``
  sees the center already moved by workers ``0..i-1``: ``d = alpha (x_i - x~); x_i <- x_i - d;
  x~ <- x~ + d``. Run in a synchronous group this is the update sequence of one round of the
  parameter server with that arrival order, made deterministic.

Stability of the synchronous exchange needs ``0 <= alpha`` and ``p * alpha < 1`` (the paper's
condition for the quadratic case, beta = p * alpha); alpha = 0 leaves every worker on plain SGD.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from genlab._checks import choice, real
from genlab.optim._distributed import ParallelOptimizer, all_gather_vectors, all_reduce_sum, rank, set_flat_params

__all__ = ["EASGD", "easgd_exchange"]

MODES = ("sync", "async")


def easgd_exchange(
    workers: Sequence[torch.Tensor], center: torch.Tensor, alpha: float, mode: str = "sync"
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """One elastic exchange on explicit vectors (the reference the distributed code must match).

    Args:
        workers: the ``p`` worker vectors ``x_i`` in rank order.
        center: the center ``x~``.
        alpha: elasticity ``eta * rho``.
        mode: "sync" or "async" (see the module docstring).

    Returns:
        The new worker vectors and the new center (new tensors; inputs are untouched).
    """
    choice(mode, "mode", MODES)
    if mode == "sync":
        diffs = [x - center for x in workers]
        total = diffs[0].clone()
        for d in diffs[1:]:
            total = total + d
        return [x - alpha * d for x, d in zip(workers, diffs)], center + alpha * total
    new_workers, c = [], center.clone()
    for x in workers:
        d = alpha * (x - c)
        new_workers.append(x - d)
        c = c + d
    return new_workers, c


class EASGD(ParallelOptimizer):
    """EASGD on this worker of the process group (see the module docstring).

    Every worker holds an identical replica of the center: the exchange is computed from
    collectives whose results are the same on all ranks, so no parameter server is needed.

    Args:
        params: this worker's parameters.
        lr: SGD learning rate ``eta``.
        alpha: elasticity ``eta * rho``, >= 0.
        tau: communication period (local steps per round).
        mode: "sync" (one all-reduce of ``x_i - x~`` per round) or "async" (all-gather, then the
            rank-ordered sequence of the asynchronous update).
    """

    def __init__(self, params: Iterable[torch.Tensor], *, lr: float, alpha: float, tau: int = 1, mode: str = "sync") -> None:
        alpha = real(alpha, "alpha", low=0.0, finite=False, expected="a number >= 0")
        mode = choice(mode, "mode", MODES)
        super().__init__(params, lr=lr, tau=tau)
        self.alpha, self.mode = alpha, mode

    @torch.no_grad()
    def communicate(self, round_loss: float) -> None:
        x = self.vector()
        self.spread = self._mean_distance(x, self._center)
        if self.mode == "sync":
            d = x - self._center
            total = all_reduce_sum(d.clone())
            x_new = x - self.alpha * d
            self._center = self._center + self.alpha * total
        else:
            workers, center = easgd_exchange(all_gather_vectors(x), self._center, self.alpha, "async")
            x_new, self._center = workers[rank()], center
        set_flat_params(self._params(), x_new)
