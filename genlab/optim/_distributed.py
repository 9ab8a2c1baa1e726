"""torch.distributed primitives of the parallel optimizers, and their base class.

Workers are processes of one ``torch.distributed`` process group, joined before the optimizer
is built (by whatever launches them: ``torchrun``, ``torch.multiprocessing``, or
:mod:`genlab.parallel`). Every collective here is a plain ``torch.distributed`` call; there is
no protocol of our own.

Without an initialised process group every helper acts as the one-worker group (rank 0 of 1),
so that the optimizers run unchanged in a single process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "ParallelOptimizer",
    "all_gather_vectors",
    "all_reduce_sum",
    "flat_params",
    "rank",
    "set_flat_params",
    "world_size",
]


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This worker's rank (0 without a process group)."""
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    """Number of workers in the group (1 without a process group)."""
    return dist.get_world_size() if _active() else 1


def flat_params(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """The parameters concatenated into one new 1-D tensor (a copy)."""
    return torch.cat([p.detach().reshape(-1) for p in params]).clone()


@torch.no_grad()
def set_flat_params(params: Iterable[torch.Tensor], vector: torch.Tensor) -> None:
    """Copy a 1-D vector (in :func:`flat_params` order) into the parameters, in place."""
    offset = 0
    for p in params:
        n = p.numel()
        p.copy_(vector[offset:offset + n].view_as(p))
        offset += n
    if offset != vector.numel():
        raise ValueError(f"vector has {vector.numel()} entries; the parameters have {offset}")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over the workers, in place; returns it."""
    if _active() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_vectors(vector: torch.Tensor) -> list[torch.Tensor]:
    """Every worker's copy of ``vector`` (same shape on all), in rank order."""
    if not (_active() and dist.get_world_size() > 1):
        return [vector.clone()]
    out = [torch.empty_like(vector) for _ in range(dist.get_world_size())]
    dist.all_gather(out, vector.contiguous())
    return out


class ParallelOptimizer(torch.optim.Optimizer):
    """Base of the parallel optimizers: plain SGD steps on this worker, an exchange every ``tau``.

    One *round* is ``tau`` local steps ``x <- x - lr * g(x)`` (``g`` this worker's minibatch
    gradient) followed by one exchange with the other workers (:meth:`communicate`, defined by
    the subclass). All workers start from rank 0's parameters (broadcast at construction), which
    are also the initial center. Parameters are handled as one flat vector in ``params`` order.

    Attributes after each exchange: ``rounds`` (exchanges done), ``spread`` (mean over workers of
    ``||x_i - x_ref||`` just before the exchange, ``x_ref`` the method's center or leader).
    """

    def __init__(self, params: Iterable[torch.Tensor], *, lr: float, tau: int) -> None:
        if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0):
            raise ValueError(f"lr must be a number > 0; got {lr!r}")
        if isinstance(tau, bool) or not isinstance(tau, int) or tau < 1:
            raise ValueError(f"tau must be an integer >= 1; got {tau!r}")
        super().__init__(params, {"lr": float(lr)})
        self.tau = tau
        self.local_steps = 0
        self.rounds = 0
        self.spread = 0.0
        self._round_loss = 0.0
        self._round_count = 0
        with torch.no_grad():
            if _active() and dist.get_world_size() > 1:
                for p in self._params():
                    dist.broadcast(p, src=0)
        self._center = flat_params(self._params())

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def vector(self) -> torch.Tensor:
        """This worker's parameters as one flat vector (a copy)."""
        return flat_params(self._params())

    def center(self) -> torch.Tensor:
        """The method's center variable (EASGD), leader (LSGD) or average (a copy)."""
        return self._center.clone()

    def load_center(self, center: torch.Tensor) -> None:
        """Resume from ``center``: this worker's parameters and the center both become it."""
        center = center.to(self._center.device, self._center.dtype)
        set_flat_params(self._params(), center)
        self._center = center.clone()

    def _reduce_gradients(self) -> None:
        """Hook run before each local step (data-parallel SGD averages gradients here)."""

    @torch.no_grad()
    def step(self, closure: Any = None, *, loss: float | None = None) -> bool:  # type: ignore[override]
        """One SGD step on this worker; every ``tau``-th step ends a round with an exchange.

        Args:
            closure: unused (gradients must already be in ``.grad``); accepted for the
                torch.optim signature.
            loss: this step's minibatch loss (LSGD picks its leaders from the mean over a round).

        Returns:
            Whether this step ended a round (an exchange took place).
        """
        self._reduce_gradients()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
        if loss is not None:
            self._round_loss += float(loss)
            self._round_count += 1
        self.local_steps += 1
        if self.local_steps % self.tau:
            return False
        round_loss = self._round_loss / max(self._round_count, 1)
        self._round_loss, self._round_count = 0.0, 0
        self.communicate(round_loss)
        self.rounds += 1
        return True

    def communicate(self, round_loss: float) -> None:
        """The exchange at the end of a round; sets ``self.spread`` and the center."""
        raise NotImplementedError

    def _mean_distance(self, x: torch.Tensor, reference: torch.Tensor) -> float:
        """Mean over workers of ``||x_i - reference||`` (one scalar all-reduce)."""
        d = torch.linalg.vector_norm(x - reference).reshape(1).to(torch.float64)
        return float(all_reduce_sum(d).item()) / world_size()
