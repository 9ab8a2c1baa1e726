"""One worker of a run: join the group, resume, train round by round, record.

Reads ``run_dir/run.json`` (written by :func:`genlab.parallel._launch.prepare_run`). Rounds run
while a whole round (``tau * batch_size * world`` samples) fits in the budget; the world size is
re-read at every (re)start, so a group restarted with more or fewer workers spends the rest of
the budget with its own size. Worker ``r``'s minibatch at local step ``t`` is drawn without
replacement from a generator seeded by ``(seed, r, t)``: a restarted worker draws the same
batches again.

Rank 0 measures the center after every round (the sharpness on ``measurements`` evenly spaced
rounds, always the last) and saves ``state.pt`` (the checkpoint a restarted group resumes from);
at the end it writes ``rounds.csv`` and ``result.json``. Every worker appends where it started
to ``starts.jsonl`` and its pid to ``pids/rank<r>.pid``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from genlab.empirical._train import per_sample_loss
from genlab.optim import EASGD, LSGD, DataParallelSGD, LocalSGD
from genlab.optim._distributed import ParallelOptimizer
from genlab.parallel._launch import init_from_env
from genlab.parallel._problem import Problem, build_problem, evaluate_center
from genlab.parallel._state import load_state, save_state

ROUND_COLUMNS = ("round", "step", "samples", "train_loss", "test_loss", "test_error", "spread", "sharpness", "workers")


@dataclass
class _Progress:
    """Where the run stands: rounds done, samples spent, restarts so far, rows (ROUND_COLUMNS) recorded."""

    round: int = 0
    samples: int = 0
    restarts: int = 0
    rows: list[list[float]] = field(default_factory=list)


@dataclass
class _Clock:
    """Seconds this incarnation spent training (of which on the exchange) and measuring, and its rounds."""

    train_s: float = 0.0
    comm_s: float = 0.0
    eval_s: float = 0.0
    rounds: int = 0


def worker_main(run_dir: str | Path) -> None:
    """Entry point of one worker: join the group from the environment, train, record."""
    run_dir = Path(run_dir)
    cfg = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    par, method = cfg["parallel"], cfg["method"]
    device, rank, world = _join_group(run_dir, par)
    prob = build_problem(cfg, device)
    opt = _make_optimizer(method, list(prob.model.parameters()), par)
    state = load_state(run_dir / "state.pt")
    progress = _resume(opt, state, par["tau"])
    _record_start(run_dir, opt, state, progress, rank, world)
    if rank == 0 and not progress.rows:
        train, test, error, sharp = evaluate_center(prob, opt.center(), sharpness=True, seed=par["seed"])
        progress.rows.append([0, 0, 0, train, test, error, 0.0, sharp, world])
    per_round = par["tau"] * par["batch_size"] * world
    clock = _Clock()
    while progress.samples + per_round <= par["samples"]:
        _train_round(prob, opt, par, rank, progress.round, device, clock)
        progress.round, progress.samples, clock.rounds = progress.round + 1, progress.samples + per_round, clock.rounds + 1
        if rank == 0:
            _measure_and_checkpoint(run_dir, prob, opt, par, progress, per_round, world, clock)
        dist.barrier()  # the next round starts only once the state of this one is saved
    train_mean, comm_mean = _mean_over_workers(clock, world, device)
    if rank == 0:
        _write_records(run_dir, method, par, progress, clock, per_round, world, train_mean, comm_mean)
    dist.barrier()
    dist.destroy_process_group()


def _join_group(run_dir: Path, par: dict[str, Any]) -> tuple[torch.device, int, int]:
    """Setup: threads, device, the process group; returns (device, rank, world size)."""
    torch.set_num_threads(par["threads"])
    device = torch.device("cpu")
    if par["device"] == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    init_from_env(par["backend"] if par["device"] == "cuda" or par["backend"] != "nccl" else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    (run_dir / "pids").mkdir(exist_ok=True)
    (run_dir / "pids" / f"rank{rank}.pid").write_text(str(os.getpid()))
    return device, rank, world


def _make_optimizer(method: str, params: list[torch.Tensor], par: dict[str, Any]) -> ParallelOptimizer:
    """The parallel optimizer of ``method`` (its constructor broadcasts rank 0's parameters)."""
    if method == "easgd":
        return EASGD(params, lr=par["lr"], alpha=par["alpha"], tau=par["tau"], mode=par["mode"])
    if method == "lsgd":
        return LSGD(params, lr=par["lr"], pull_local=par["pull_local"], pull_global=par["pull_global"], tau=par["tau"],
                    group_size=par["group_size"] or None)
    if method == "local_sgd":
        return LocalSGD(params, lr=par["lr"], tau=par["tau"])
    return DataParallelSGD(params, lr=par["lr"], tau=par["tau"])


def _resume(opt: ParallelOptimizer, state: dict[str, Any] | None, tau: int) -> _Progress:
    """A restarted (possibly resized) group: every worker starts from the saved center and round."""
    if state is None:
        return _Progress()
    opt.load_center(state["center"])
    progress = _Progress(int(state["round"]), int(state["samples"]), int(state["restarts"]) + 1,
                         [list(map(float, row)) for row in state["rows"].tolist()])
    opt.local_steps, opt.rounds = progress.round * tau, progress.round
    return progress


def _record_start(run_dir: Path, opt: ParallelOptimizer, state: dict[str, Any] | None, progress: _Progress,
                  rank: int, world: int) -> None:
    """Append where this worker starts (and how far from the saved center) to ``starts.jsonl``."""
    distance = 0.0 if state is None else float(torch.linalg.vector_norm(opt.vector().cpu().double() - state["center"].double()))
    start = {"restart": progress.restarts, "rank": rank, "world": world, "round": progress.round,
             "distance_to_saved_center": distance}
    with open(run_dir / "starts.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(start) + "\n")


def _batch(seed: int, rank: int, step: int, n: int, size: int, device: torch.device) -> torch.Tensor:
    """Worker ``rank``'s minibatch at local step ``step``: ``size`` of the ``n`` training points
    drawn without replacement by a generator seeded with ``(seed, rank, step)``."""
    idx = np.random.default_rng([seed, rank, step]).choice(n, size, replace=False)
    return torch.as_tensor(idx, device=device)


def _local_step(prob: Problem, opt: ParallelOptimizer, idx: torch.Tensor) -> float:
    """The minibatch gradient and one optimizer step (the exchange when it ends a round);
    returns the seconds of the optimizer step."""
    opt.zero_grad(set_to_none=True)
    loss = per_sample_loss(prob.model(prob.x_train[idx]), prob.y_train[idx], prob.loss).mean()
    loss.backward()
    start = time.perf_counter()
    opt.step(loss=float(loss.detach()))
    return time.perf_counter() - start


def _train_round(prob: Problem, opt: ParallelOptimizer, par: dict[str, Any], rank: int, r: int, device: torch.device,
                 clock: _Clock) -> None:
    """Round ``r``: ``tau`` local steps; the last carries the exchange, timed as communication."""
    start, tau, n = time.perf_counter(), par["tau"], prob.x_train.shape[0]
    step_s = 0.0
    for t in range(r * tau, (r + 1) * tau):
        step_s = _local_step(prob, opt, _batch(par["seed"], rank, t, n, par["batch_size"], device))
    clock.comm_s += step_s
    clock.train_s += time.perf_counter() - start


def _is_measured(done: int, per_round: int, budget: int, measurements: int) -> bool:
    """Whether the round that brought the samples to ``done`` gets a sharpness: the last round,
    and the first round past each of ``measurements`` evenly spaced fractions of the budget."""
    last = done + per_round > budget
    return last or (done * measurements) // budget > ((done - per_round) * measurements) // budget


def _measure_and_checkpoint(run_dir: Path, prob: Problem, opt: ParallelOptimizer, par: dict[str, Any],
                            progress: _Progress, per_round: int, world: int, clock: _Clock) -> None:
    """Rank 0 after a round: measure the center, append the row, save ``state.pt`` atomically."""
    start, r = time.perf_counter(), progress.round
    measure = _is_measured(progress.samples, per_round, par["samples"], par["measurements"])
    train, test, error, sharp = evaluate_center(prob, opt.center(), sharpness=measure, seed=par["seed"] + r)
    progress.rows.append([r, r * par["tau"], progress.samples, train, test, error, opt.spread, sharp, world])
    save_state(run_dir / "state.pt", {"center": opt.center(), "round": r, "samples": progress.samples,
                                      "restarts": progress.restarts, "rows": torch.tensor(progress.rows, dtype=torch.float64)})
    clock.eval_s += time.perf_counter() - start


def _mean_over_workers(clock: _Clock, world: int, device: torch.device) -> tuple[float, float]:
    """Training and exchange seconds, averaged over the workers (one all-reduce)."""
    totals = torch.tensor([clock.train_s, clock.comm_s], dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    return float(totals[0]) / world, float(totals[1]) / world


def _write_records(run_dir: Path, method: str, par: dict[str, Any], progress: _Progress, clock: _Clock,
                   per_round: int, world: int, train_mean: float, comm_mean: float) -> None:
    """Rank 0 at the end: ``rounds.csv`` (one row per round) and ``result.json``."""
    import pandas as pd

    pd.DataFrame(progress.rows, columns=list(ROUND_COLUMNS)).to_csv(run_dir / "rounds.csv", index=False)
    last, r, tau = progress.rows[-1], progress.round, par["tau"]
    result = {
        "method": method, "nproc": world, "rounds": r,
        "communications": r * (tau if method == "data_parallel" else 1), "steps_per_worker": r * tau,
        "samples": progress.samples, "train_loss": last[3], "test_loss": last[4], "test_error": last[5],
        "spread": last[6], "sharpness": last[7], "restarts": progress.restarts,
        "train_seconds": train_mean, "comm_seconds_per_round": comm_mean / max(clock.rounds, 1),
        "samples_per_second": clock.rounds * per_round / max(train_mean, 1e-12), "eval_seconds": clock.eval_s,
    }
    (run_dir / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
