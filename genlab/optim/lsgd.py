"""Leader SGD (Teng, Gao, Dou, Luo, Choromanska et al. 2019, "Leader Stochastic Gradient Descent
for Distributed Training of Deep Learning Models", NeurIPS).

Workers are pulled toward the currently best worker (the *leader*, lowest loss) instead of an
average: the objective of worker ``i`` in group ``j`` is
``f(x_i) + (lambda/2) ||x_i - x_l(j)||^2 + (lambda_G/2) ||x_i - x_G||^2`` with ``x_l(j)`` the
leader of its group (local leader) and ``x_G`` the leader of all workers (global leader).

Here (the paper's scheme with communication period ``tau``): each worker takes ``tau`` local SGD
steps; then the leaders are chosen by the mean minibatch loss each worker saw over the round
(ties to the lower rank), and every worker is pulled, using the values before the pull,

    x_i <- x_i - a_l (x_i - x_l(j)) - a_G (x_i - x_G),

with pulling strengths ``a_l = eta * lambda`` and ``a_G = eta * lambda_G``. Groups are the
contiguous blocks of ``group_size`` ranks (the paper's workers on one node). A leader is not
moved by its own pull; the global leader is not moved at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from genlab._checks import integer, real
from genlab.optim._distributed import ParallelOptimizer, all_gather_vectors, rank, set_flat_params, world_size

__all__ = ["LSGD", "lsgd_pull", "leaders"]


def leaders(losses: Sequence[float], group_size: int) -> tuple[list[int], int]:
    """The local leader of each worker's group and the global leader (indices, lowest loss).

    Returns:
        ``(local, global)``: ``local[i]`` is the leader of worker ``i``'s group, ``global`` the
        index of the lowest loss overall; ties go to the lower index.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1; got {group_size}")
    p = len(losses)
    best = lambda idx: min(idx, key=lambda i: (losses[i], i))  # noqa: E731
    local = [best(range((i // group_size) * group_size, min(p, (i // group_size + 1) * group_size))) for i in range(p)]
    return local, best(range(p))


def lsgd_pull(
    workers: Sequence[torch.Tensor], losses: Sequence[float], *, pull_local: float, pull_global: float, group_size: int
) -> tuple[list[torch.Tensor], int]:
    """One leader pull on explicit vectors (the reference the distributed code must match).

    Returns:
        The new worker vectors and the index of the global leader.
    """
    local, glob = leaders(losses, group_size)
    x_g = workers[glob]
    new = [x - pull_local * (x - workers[local[i]]) - pull_global * (x - x_g) for i, x in enumerate(workers)]
    return new, glob


class LSGD(ParallelOptimizer):
    """Leader SGD on this worker of the process group (see the module docstring).

    The exchange all-gathers the worker vectors and their round losses; every rank computes the
    same leaders and keeps the global leader as the method's center.

    Args:
        params: this worker's parameters.
        lr: SGD learning rate.
        pull_local: ``a_l = lr * lambda`` toward the group's leader, in [0, 1].
        pull_global: ``a_G = lr * lambda_G`` toward the global leader, in [0, 1].
        tau: communication period (local steps per round).
        group_size: workers per group (default: all workers form one group).
    """

    def __init__(
        self, params: Iterable[torch.Tensor], *, lr: float, pull_local: float, pull_global: float,
        tau: int = 1, group_size: int | None = None,
    ) -> None:
        pull_local = real(pull_local, "pull_local", low=0.0, high=1.0, expected="a number in [0, 1]")
        pull_global = real(pull_global, "pull_global", low=0.0, high=1.0, expected="a number in [0, 1]")
        if group_size is not None:
            group_size = integer(group_size, "group_size", minimum=1, expected="None or an int >= 1")
        super().__init__(params, lr=lr, tau=tau)
        self.pull_local, self.pull_global, self.group_size = pull_local, pull_global, group_size
        self.leader = 0

    @torch.no_grad()
    def communicate(self, round_loss: float) -> None:
        x = self.vector()
        workers = all_gather_vectors(x)
        loss_vec = torch.tensor([round_loss], dtype=torch.float64, device=x.device)
        losses = [float(v.item()) for v in all_gather_vectors(loss_vec)]
        group = self.group_size or world_size()
        new, self.leader = lsgd_pull(workers, losses, pull_local=self.pull_local, pull_global=self.pull_global, group_size=group)
        self.spread = sum(float(torch.linalg.vector_norm(w - workers[self.leader])) for w in workers) / len(workers)
        self._center = workers[self.leader].clone()
        set_flat_params(self._params(), new[rank()])
