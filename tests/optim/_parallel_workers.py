"""Functions run inside spawned torch.distributed workers by the parallel-optimizer tests.

They live in an importable module (not a test file) so that ``torch.multiprocessing`` can
pickle them by name into its spawned children. Each writes its results with ``torch.save`` to
``out/rank<r>.pt``; the tests compare them with hand-computed values.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.distributed as dist

#: Worker i minimises f_i(x) = 1/2 (x - b_i)^T A_i (x - b_i), from x = (1, -1).
A = (torch.tensor([1.0, 2.0], dtype=torch.float64), torch.tensor([2.0, 1.0], dtype=torch.float64))
B = (torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64))
X0 = (1.0, -1.0)


def _join(rank: int, world: int, port: int) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    from genlab.parallel._launch import init_from_env

    init_from_env("gloo")


def checks(rank: int, world: int, port: int, out: str) -> None:
    """Both checks below in one process group (one spawn: process start-up dominates)."""
    _join(rank, world, port)
    results = {"quadratic": _quadratic_round(rank), "regression": _regression_convergence(rank)}
    torch.save(results, Path(out) / f"rank{rank}.pt")
    dist.destroy_process_group()


def _quadratic_round(rank: int) -> dict:
    """One round (tau = 1, lr = 0.1) of every optimizer on the two quadratics."""
    from genlab.optim.easgd import EASGD
    from genlab.optim.local_sgd import DataParallelSGD, LocalSGD
    from genlab.optim.lsgd import LSGD

    makers = {
        "easgd_sync": lambda p: EASGD(p, lr=0.1, alpha=0.25, tau=1, mode="sync"),
        "easgd_async": lambda p: EASGD(p, lr=0.1, alpha=0.25, tau=1, mode="async"),
        "lsgd_one_group": lambda p: LSGD(p, lr=0.1, pull_local=0.5, pull_global=0.25, tau=1),
        "lsgd_groups_of_one": lambda p: LSGD(p, lr=0.1, pull_local=0.5, pull_global=0.25, tau=1, group_size=1),
        "local_sgd": lambda p: LocalSGD(p, lr=0.1, tau=1),
        "data_parallel": lambda p: DataParallelSGD(p, lr=0.1, tau=1),
    }
    results = {}
    for name, make in makers.items():
        # rank 1 starts elsewhere: the constructor's broadcast must put it on rank 0's point
        x = torch.nn.Parameter(torch.tensor(X0 if rank == 0 else (5.0, 5.0), dtype=torch.float64))
        opt = make([x])
        loss = 0.5 * (A[rank] * (x - B[rank]) ** 2).sum()
        loss.backward()
        ended = opt.step(loss=float(loss.detach()))
        results[name] = torch.cat([x.detach().clone(), opt.center(), torch.tensor([float(ended), opt.spread], dtype=torch.float64)])
    return results


def _regression_convergence(rank: int) -> dict:
    """Minibatch SGD on noise-free linear regression (convex, interpolating) with every optimizer."""
    from genlab.optim.easgd import EASGD
    from genlab.optim.local_sgd import DataParallelSGD, LocalSGD
    from genlab.optim.lsgd import LSGD

    gen = torch.Generator().manual_seed(7)  # the same data on every rank
    X = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    w_true = torch.tensor([1.5, -2.0, 0.5], dtype=torch.float64)
    y = X @ w_true
    makers = {
        "easgd_sync": lambda p: EASGD(p, lr=0.1, alpha=0.2, tau=4, mode="sync"),
        "easgd_async": lambda p: EASGD(p, lr=0.1, alpha=0.2, tau=4, mode="async"),
        "lsgd": lambda p: LSGD(p, lr=0.1, pull_local=0.2, pull_global=0.2, tau=4),
        "local_sgd": lambda p: LocalSGD(p, lr=0.1, tau=4),
        "data_parallel": lambda p: DataParallelSGD(p, lr=0.1, tau=4),
    }
    results = {}
    for name, make in makers.items():
        w = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
        opt = make([w])
        batches = torch.Generator().manual_seed(100 + rank)
        for _ in range(400):
            idx = torch.randperm(64, generator=batches)[:8]
            opt.zero_grad()
            loss = 0.5 * ((X[idx] @ w - y[idx]) ** 2).mean()
            loss.backward()
            opt.step(loss=float(loss.detach()))
        results[name] = torch.cat([opt.center(), w.detach().clone()])
    results["X"], results["y"] = X, y
    return results


def spawn(fn: object, world: int, out: Path) -> list[dict]:
    """Run ``fn`` on ``world`` spawned gloo workers; returns each rank's saved results."""
    import torch.multiprocessing as mp

    from genlab.parallel._launch import free_port

    mp.start_processes(fn, args=(world, free_port(), str(out)), nprocs=world, join=True, start_method="spawn")
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(world)]
