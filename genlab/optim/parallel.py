"""The parallel-training runner behind ``genlab train-parallel CONFIG.toml --nproc N``.

A config names one task, one fc/conv architecture and one parallel optimizer; an optional
``[sweep]`` table runs several methods and worker counts on the same task and the same budget
of samples. Each run is a ``torch.distributed`` group of ``nproc`` worker processes launched by
``torchrun`` (elastic agent: ``--max-restarts``, the default launcher) or by
``torch.multiprocessing`` (``launcher="spawn"``, used by the tests); both start the same
:func:`worker_main`.

Budget and schedule: ``samples`` gradient samples in all; a round costs ``tau * batch_size *
nproc`` samples and rounds run while a whole one fits (so each worker takes about
``samples / (batch_size * nproc)`` local steps). Worker ``r``'s minibatch at step ``t`` is drawn
without replacement from a generator seeded by ``(seed, r, t)``: a restarted worker draws the
same batches again.

Per round rank 0 records: the samples used so far, the center's train loss, test loss and test
error (the center is the EASGD center variable, the LSGD global leader, the average for local /
data-parallel SGD), the spread ``mean_i ||x_i - x_ref||`` before the exchange, and on
``measurements`` evenly spaced rounds (always the last) the sharpness of the center: the top
eigenvalue of the Hessian of the training loss on ``sharpness_samples`` training points
(:func:`genlab.empirical._curvature.top_eigenvalues`).

Elasticity: after every round rank 0 writes the center, the round counter and the rows so far to
``state.pt`` (atomically, :func:`~genlab.optim._distributed.save_state`). When a worker dies,
torchrun's agent stops the group and starts it again (up to ``--max-restarts`` times); every
worker of the new group, however many there are, starts from the saved center at the saved round.

Output (``out``): per run a folder ``<method>-p<nproc>`` (``run.json`` resolved config,
``rounds.csv``, ``result.json``, ``state.pt``, ``starts.jsonl``: where each worker of each
incarnation started, ``pids/``), and for all runs ``config.json`` (resolved), ``summary.csv``,
``table.md`` and ``figure.png`` (center loss, test error, spread and sharpness against samples).
A finished run whose ``run.json`` is identical is reused, not recomputed.

Why a command of its own rather than a ``[parallel]`` table in ``genlab run`` studies: a study
cell is one process in the study's executor pool, while a parallel run is a group of processes
with its own launcher, restarts and rendezvous; keeping it apart leaves the study schema, cells
and executors untouched (no coupling), at the price of not sharing the study cache and table.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "METHODS", "ROUND_COLUMNS", "launch", "parse_config", "prepare_run", "torchrun_command",
           "train_parallel", "worker_main"]

METHODS = ("easgd", "lsgd", "local_sgd", "data_parallel")
LAUNCHERS = ("torchrun", "spawn")
ROUND_COLUMNS = ("round", "step", "samples", "train_loss", "test_loss", "test_error", "spread", "sharpness", "workers")

#: [parallel] keys and their defaults.
PARALLEL_DEFAULTS: dict[str, Any] = {
    "method": "easgd",
    "lr": 0.05,
    "batch_size": 32,
    "samples": 32000,
    "tau": 4,
    "alpha": 0.1,
    "mode": "sync",
    "pull_local": 0.1,
    "pull_global": 0.1,
    "group_size": 0,
    "loss": "auto",
    "width": 128,
    "seed": 0,
    "backend": "auto",
    "device": "cpu",
    "dtype": "float32",
    "measurements": 8,
    "sharpness_samples": 256,
    "threads": 1,
}
TOP_KEYS = ("name", "description", "task", "model", "parallel", "sweep")
SWEEP_KEYS = ("method", "nproc")


class ConfigError(ValueError):
    """A bad train-parallel config; the message names the key (``parallel.lr``, ``task.name``)."""


# ---------------------------------------------------------------------------------------------
# Config.


def _check_number(key: str, value: Any, *, minimum: float, integer: bool = False, strict: bool = False,
                  maximum: float | None = None) -> Any:
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or not math.isfinite(value) or value < minimum or (strict and value == minimum) \
            or (maximum is not None and value > maximum):
        what = "an integer" if integer else "a number"
        bound = f"> {minimum}" if strict else f">= {minimum}"
        if maximum is not None:
            bound += f" and <= {maximum}"
        raise ConfigError(f"parallel.{key} must be {what} {bound}; got {value!r}")
    return value


def _check_parallel(raw: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(raw) - set(PARALLEL_DEFAULTS))
    if unknown:
        raise ConfigError(f"parallel.{unknown[0]} is not a key; expected one of {', '.join(PARALLEL_DEFAULTS)}")
    p = {**PARALLEL_DEFAULTS, **raw}
    choices = {"method": METHODS, "mode": ("sync", "async"), "loss": ("auto", "mse", "cross_entropy", "logistic"),
               "backend": ("auto", "gloo", "nccl"), "device": ("cpu", "cuda"), "dtype": ("float32", "float64")}
    for key, options in choices.items():
        if p[key] not in options:
            raise ConfigError(f"parallel.{key} must be one of {', '.join(options)}; got {p[key]!r}")
    _check_number("lr", p["lr"], minimum=0, strict=True)
    _check_number("alpha", p["alpha"], minimum=0, maximum=1)
    _check_number("pull_local", p["pull_local"], minimum=0, maximum=1)
    _check_number("pull_global", p["pull_global"], minimum=0, maximum=1)
    for key in ("batch_size", "samples", "tau", "width", "measurements", "sharpness_samples", "threads"):
        _check_number(key, p[key], minimum=1, integer=True)
    _check_number("group_size", p["group_size"], minimum=0, integer=True)
    _check_number("seed", p["seed"], minimum=0, integer=True)
    p["lr"], p["alpha"], p["pull_local"], p["pull_global"] = (float(p[k]) for k in ("lr", "alpha", "pull_local", "pull_global"))
    return p


def parse_config(data: dict[str, Any], *, nproc: int | None = None) -> dict[str, Any]:
    """Validate a train-parallel config and resolve it: defaults filled, sweep expanded.

    Returns:
        ``{"name", "description", "task", "model", "parallel", "runs"}`` where ``runs`` is the
        list of ``(method, nproc)`` pairs to run (``nproc`` overrides the sweep's worker counts).

    Raises:
        ConfigError: naming the offending key.
    """
    from genlab.models import ArchSpec, SpecError
    from genlab.tasks import TaskError, make_task, task_params

    if not isinstance(data, dict):
        raise ConfigError("the config must be a TOML table")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise ConfigError(f"{unknown[0]} is not a key; expected one of {', '.join(TOP_KEYS)}")
    for section in ("task", "model", "parallel", "sweep"):
        if not isinstance(data.get(section, {}), dict):
            raise ConfigError(f"{section} must be a table")
    task = dict(data.get("task", {}))
    if "name" not in task:
        raise ConfigError("task.name is required")
    task_seed = task.pop("seed", 0)
    from genlab.tasks import task_names

    if task["name"] not in task_names():
        raise ConfigError(f"task.name must be one of {', '.join(task_names())}; got {task['name']!r}")
    try:
        task_params(task["name"], **{k: v for k, v in task.items() if k != "name"})
    except TaskError as exc:
        raise ConfigError(str(exc)) from None
    except TypeError as exc:
        raise ConfigError(f"task: {exc}") from None
    parallel = _check_parallel(dict(data.get("parallel", {})))
    model = dict(data.get("model", {}))
    if "out_dim" in model:
        raise ConfigError("model.out_dim is set from the task; remove it")
    try:
        ArchSpec(**model)
    except SpecError as exc:
        raise ConfigError(f"model: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"model: {exc}") from None
    sweep = dict(data.get("sweep", {}))
    unknown = sorted(set(sweep) - set(SWEEP_KEYS))
    if unknown:
        raise ConfigError(f"sweep.{unknown[0]} is not a key; expected one of {', '.join(SWEEP_KEYS)}")
    methods = sweep.get("method", [parallel["method"]])
    if not isinstance(methods, list) or not methods or any(m not in METHODS for m in methods):
        raise ConfigError(f"sweep.method must be a non-empty list of {', '.join(METHODS)}; got {methods!r}")
    counts = [nproc] if nproc is not None else sweep.get("nproc", [1])
    if not isinstance(counts, list) or not counts or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts):
        raise ConfigError(f"sweep.nproc must be a non-empty list of integers >= 1; got {counts!r}")
    for n in counts:
        if parallel["samples"] // (parallel["batch_size"] * n) < parallel["tau"]:
            raise ConfigError(f"parallel.samples {parallel['samples']} gives fewer than tau = {parallel['tau']} steps "
                              f"per worker with {n} workers of batch {parallel['batch_size']}")
    try:
        t = make_task(task["name"], seed=task_seed, **{k: v for k, v in task.items() if k != "name"})
    except TaskError as exc:
        raise ConfigError(str(exc)) from None
    if parallel["batch_size"] > t.x_train.shape[0]:
        raise ConfigError(f"parallel.batch_size {parallel['batch_size']} exceeds task.n_train {t.x_train.shape[0]}")
    return {
        "name": str(data.get("name", "train_parallel")), "description": str(data.get("description", "")),
        "task": {**task, "seed": task_seed}, "model": model, "parallel": parallel,
        "runs": [(m, n) for m in methods for n in counts],
    }


# ---------------------------------------------------------------------------------------------
# The worker.


@dataclass
class _Problem:
    task: Any
    model: Any
    loss: str
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    x_sharp: Any
    y_sharp: Any


def _loss_name(task: Any, requested: str) -> str:
    if requested != "auto":
        return requested
    if task.meta.get("kind") == "classification":
        return "cross_entropy" if task.y_train.shape[1] > 1 else "logistic"
    return "mse"


def _build(cfg: dict[str, Any], device: Any) -> _Problem:
    import numpy as np
    import torch

    from genlab.models import ArchSpec
    from genlab.tasks import make_task

    par = cfg["parallel"]
    task_cfg = {k: v for k, v in cfg["task"].items() if k not in ("name", "seed")}
    task = make_task(cfg["task"]["name"], seed=cfg["task"]["seed"], **task_cfg)
    dtype = {"float32": torch.float32, "float64": torch.float64}[par["dtype"]]
    spec = ArchSpec(**cfg["model"], out_dim=task.y_train.shape[1])
    model = spec.to_torch(par["width"], input_shape=tuple(task.x_train.shape[1:]), seed=par["seed"], dtype=dtype).to(device)
    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
    m = min(par["sharpness_samples"], task.x_train.shape[0])
    return _Problem(task, model, _loss_name(task, par["loss"]), as_t(task.x_train), as_t(task.y_train), as_t(task.x_test),
                    as_t(task.y_test), as_t(task.x_train[:m]), as_t(task.y_train[:m]))


def _make_optimizer(method: str, params: Any, par: dict[str, Any]) -> Any:
    from genlab.optim.easgd import EASGD
    from genlab.optim.local_sgd import DataParallelSGD, LocalSGD
    from genlab.optim.lsgd import LSGD

    if method == "easgd":
        return EASGD(params, lr=par["lr"], alpha=par["alpha"], tau=par["tau"], mode=par["mode"])
    if method == "lsgd":
        return LSGD(params, lr=par["lr"], pull_local=par["pull_local"], pull_global=par["pull_global"], tau=par["tau"],
                    group_size=par["group_size"] or None)
    if method == "local_sgd":
        return LocalSGD(params, lr=par["lr"], tau=par["tau"])
    return DataParallelSGD(params, lr=par["lr"], tau=par["tau"])


def _evaluate(prob: _Problem, center: Any, *, sharpness: bool, seed: int) -> tuple[float, float, float, float]:
    """Train loss, test loss, test error and (optionally, else NaN) sharpness of the center."""
    import copy

    import torch

    from genlab.empirical._curvature import top_eigenvalues
    from genlab.empirical._train import per_sample_loss
    from genlab.optim._distributed import set_flat_params

    net = copy.deepcopy(prob.model)
    set_flat_params(list(net.parameters()), center)
    with torch.no_grad():
        train = float(per_sample_loss(net(prob.x_train), prob.y_train, prob.loss).mean())
        out = net(prob.x_test)
        test = float(per_sample_loss(out, prob.y_test, prob.loss).mean())
        if prob.task.meta.get("kind") == "classification":
            if prob.y_test.shape[1] > 1:
                error = float((out.argmax(1) != prob.y_test.argmax(1)).double().mean())
            else:
                error = float((torch.sign(out) != prob.y_test).double().mean())
        else:
            error = float("nan")
    sharp = float("nan")
    if sharpness and math.isfinite(train):
        sharp = float(top_eigenvalues(net, prob.x_sharp, prob.y_sharp, k=1, loss=prob.loss, seed=seed).values[0])
    return train, test, error, sharp


def worker_main(run_dir: str | Path) -> None:
    """Entry point of one worker: join the group from the environment, train, record.

    Reads ``run_dir/run.json`` (written by :func:`prepare_run`). Rounds run while a whole round
    (``tau * batch_size * world`` samples) fits in the budget; the world size is re-read at every
    (re)start, so a group restarted with more or fewer workers spends the rest of the budget
    with its own size. Rank 0 writes ``state.pt`` after every round and ``rounds.csv`` and
    ``result.json`` at the end; every worker appends where it started to ``starts.jsonl``.
    """
    import numpy as np
    import torch
    import torch.distributed as dist

    from genlab.empirical._train import per_sample_loss
    from genlab.optim._distributed import init_from_env, load_state, save_state

    run_dir = Path(run_dir)
    cfg = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    par, method = cfg["parallel"], cfg["method"]
    torch.set_num_threads(par["threads"])
    device = torch.device("cpu")
    if par["device"] == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    init_from_env(par["backend"] if par["device"] == "cuda" or par["backend"] != "nccl" else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    (run_dir / "pids").mkdir(exist_ok=True)
    (run_dir / "pids" / f"rank{rank}.pid").write_text(str(os.getpid()))
    prob = _build(cfg, device)
    params = list(prob.model.parameters())
    opt = _make_optimizer(method, params, par)

    tau, batch, budget, measurements = par["tau"], par["batch_size"], par["samples"], par["measurements"]
    per_round = tau * batch * world
    state = load_state(run_dir / "state.pt")
    rows: list[list[float]] = []
    r, done, restarts = 0, 0, 0
    if state is not None:  # a restarted (possibly resized) group: every worker starts from the center
        opt.load_center(state["center"])
        r, done, restarts = int(state["round"]), int(state["samples"]), int(state["restarts"]) + 1
        rows = [list(map(float, row)) for row in state["rows"].tolist()]
        opt.local_steps, opt.rounds = r * tau, r
    start = {"restart": restarts, "rank": rank, "world": world, "round": r,
             "distance_to_saved_center": 0.0 if state is None else float(torch.linalg.vector_norm(
                 opt.vector().cpu().double() - state["center"].double()))}
    with open(run_dir / "starts.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(start) + "\n")
    if rank == 0 and not rows:
        train, test, error, sharp = _evaluate(prob, opt.center(), sharpness=True, seed=par["seed"])
        rows.append([0, 0, 0, train, test, error, 0.0, sharp, world])
    n = prob.x_train.shape[0]
    train_s = comm_s = eval_s = 0.0
    rounds_here = 0
    while done + per_round <= budget:
        t0 = time.perf_counter()
        for t in range(r * tau, (r + 1) * tau):
            idx = np.random.default_rng([par["seed"], rank, t]).choice(n, batch, replace=False)
            idx_t = torch.as_tensor(idx, device=device)
            opt.zero_grad(set_to_none=True)
            loss = per_sample_loss(prob.model(prob.x_train[idx_t]), prob.y_train[idx_t], prob.loss).mean()
            loss.backward()
            t_step = time.perf_counter()
            opt.step(loss=float(loss.detach()))
            if t == (r + 1) * tau - 1:
                comm_s += time.perf_counter() - t_step  # the last step of a round carries the exchange
        train_s += time.perf_counter() - t0
        r, done, rounds_here = r + 1, done + per_round, rounds_here + 1
        if rank == 0:
            t1 = time.perf_counter()
            last = done + per_round > budget
            measure = last or (done * measurements) // budget > ((done - per_round) * measurements) // budget
            train, test, error, sharp = _evaluate(prob, opt.center(), sharpness=measure, seed=par["seed"] + r)
            rows.append([r, r * tau, done, train, test, error, opt.spread, sharp, world])
            save_state(run_dir / "state.pt", {"center": opt.center(), "round": r, "samples": done, "restarts": restarts,
                                              "rows": torch.tensor(rows, dtype=torch.float64)})
            eval_s += time.perf_counter() - t1
        dist.barrier()  # the next round starts only once the state of this one is saved
    totals = torch.tensor([train_s, comm_s], dtype=torch.float64, device=device)
    dist.all_reduce(totals)
    if rank == 0:
        import pandas as pd

        pd.DataFrame(rows, columns=list(ROUND_COLUMNS)).to_csv(run_dir / "rounds.csv", index=False)
        last_row = rows[-1]
        train_mean, comm_mean = float(totals[0]) / world, float(totals[1]) / world
        result = {
            "method": method, "nproc": world, "rounds": r,
            "communications": r * (tau if method == "data_parallel" else 1), "steps_per_worker": r * tau,
            "samples": done, "train_loss": last_row[3], "test_loss": last_row[4], "test_error": last_row[5],
            "spread": last_row[6], "sharpness": last_row[7], "restarts": restarts,
            "train_seconds": train_mean, "comm_seconds_per_round": comm_mean / max(rounds_here, 1),
            "samples_per_second": rounds_here * per_round / max(train_mean, 1e-12), "eval_seconds": eval_s,
        }
        (run_dir / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    dist.barrier()
    dist.destroy_process_group()


def _spawned(local_rank: int, world: int, port: int, run_dir: str) -> None:
    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    worker_main(run_dir)


# ---------------------------------------------------------------------------------------------
# Launching and collecting.


def torchrun_command(run_dir: str | Path, nproc: int, *, max_restarts: int = 3, rendezvous: str | None = None,
                     nnodes: str = "1") -> list[str]:
    """The torchrun command line that runs :func:`worker_main` on ``run_dir`` with ``nproc`` workers.

    Without ``rendezvous`` the group is standalone (one agent); with ``rendezvous="host:port"``
    the agent joins an elastic c10d rendezvous of ``nnodes`` agents (e.g. "1:2": it starts alone
    and a second agent started later with the same arguments joins, which restarts the group).
    """
    cmd = [sys.executable, "-m", "torch.distributed.run"]
    if rendezvous is None:
        cmd += ["--standalone", "--nnodes=1"]
    else:
        cmd += [f"--nnodes={nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={rendezvous}",
                f"--rdzv-id=genlab-{Path(run_dir).name}", "--rdzv-conf=join_timeout=120,last_call_timeout=1"]
    return cmd + [f"--nproc-per-node={nproc}", f"--max-restarts={max_restarts}", "--monitor-interval=0.5",
                  "-m", "genlab.optim.parallel", str(run_dir)]


def launch(run_dir: str | Path, nproc: int, *, launcher: str = "torchrun", max_restarts: int = 3,
           timeout_s: float | None = None) -> None:
    """Run the workers of ``run_dir/run.json`` as ``nproc`` processes; raises if the group fails."""
    run_dir = Path(run_dir)
    if launcher == "spawn":
        import torch.multiprocessing as mp

        from genlab.optim._distributed import free_port

        mp.start_processes(_spawned, args=(nproc, free_port(), str(run_dir)), nprocs=nproc, join=True, start_method="spawn")
        return
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run(torchrun_command(run_dir, nproc, max_restarts=max_restarts), env=env, capture_output=True,
                          text=True, timeout=timeout_s)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-20:]
        raise RuntimeError(f"torchrun exited with {proc.returncode}:\n" + "\n".join(tail))


def prepare_run(cfg: dict[str, Any], method: str, nproc: int, run_dir: Path) -> bool:
    """Write ``run.json`` for one run; returns False when a finished run of the same config is there."""
    spec = {k: cfg[k] for k in ("task", "model", "parallel")} | {"method": method, "nproc": nproc}
    text = json.dumps(spec, indent=1, sort_keys=True)
    run_json = run_dir / "run.json"
    if (run_dir / "result.json").exists() and run_json.exists() and run_json.read_text(encoding="utf-8") == text:
        return False
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    run_json.write_text(text, encoding="utf-8")
    return True


def train_parallel(config: dict[str, Any] | str | Path, out: str | Path, *, nproc: int | None = None,
                   launcher: str = "torchrun", max_restarts: int = 3, progress: bool = False) -> Any:
    """Run every (method, nproc) of a config and write the run directory; returns the summary.

    Args:
        config: the parsed TOML (dict) or a path to it.
        out: run directory; finished runs with an identical resolved config are reused.
        nproc: worker count for every run (overrides ``sweep.nproc``).
        launcher: "torchrun" (elastic agent) or "spawn" (torch.multiprocessing).
        max_restarts: torchrun's ``--max-restarts``.
        progress: print one line per run.

    Returns:
        A pandas DataFrame, one row per run (``summary.csv``).
    """
    import tomllib

    import pandas as pd

    if launcher not in LAUNCHERS:
        raise ConfigError(f"launcher must be one of {', '.join(LAUNCHERS)}; got {launcher!r}")
    if not isinstance(config, dict):
        path = Path(config)
        try:
            config = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    cfg = parse_config(config, nproc=nproc)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    results = []
    for method, n in cfg["runs"]:
        run_dir = out / f"{method}-p{n}"
        fresh = prepare_run(cfg, method, n, run_dir)
        if fresh:
            start = time.perf_counter()
            launch(run_dir, n, launcher=launcher, max_restarts=max_restarts)
            wall = time.perf_counter() - start
            result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
            result["wall_seconds"] = wall
            (run_dir / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
        result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
        results.append(result)
        if progress:
            print(f"{method:>13} p={n}: test error {result['test_error']:.4f}  sharpness {result['sharpness']:.3f}  "
                  f"rounds {result['rounds']}  wall {result['wall_seconds']:.1f} s" + ("" if fresh else "  (cached)"))
    summary = pd.DataFrame(results)
    summary.to_csv(out / "summary.csv", index=False)
    columns = ["method", "nproc", "test_error", "test_loss", "train_loss", "sharpness", "spread", "communications",
               "samples", "wall_seconds", "samples_per_second"]
    (out / "table.md").write_text(_markdown(summary[columns]), encoding="utf-8")
    _figure(out, [(r["method"], r["nproc"]) for r in results])
    return summary


def _markdown(frame: Any) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _figure(out: Path, runs: list[tuple[str, int]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    panels = [("train_loss", "center train loss", "log"), ("test_error", "center test error", "linear"),
              ("spread", "spread mean ||x_i - x_ref||", "linear"), ("sharpness", "sharpness of the center", "linear")]
    colors = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(m for m, _ in runs))}  # color: method
    styles = {n: ("-", "--", ":", "-.")[i % 4] for i, n in enumerate(sorted({n for _, n in runs}))}  # line: workers
    for ax, (column, title, scale) in zip(axes.flat, panels):
        for method, n in runs:
            frame = pd.read_csv(out / f"{method}-p{n}" / "rounds.csv")
            frame = frame[frame[column].notna()]
            ax.plot(frame["samples"], frame[column], color=colors[method], linestyle=styles[n],
                    marker="o" if column == "sharpness" else None, ms=3, label=f"{method} p={n}")
        ax.set_title(title)
        ax.set_xlabel("samples")
        ax.set_yscale(scale)
    axes.flat[0].legend(fontsize=7)
    tmp = out / ".figure.png.tmp"
    fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    os.replace(tmp, out / "figure.png")


if __name__ == "__main__":  # torchrun's entry: python -m genlab.optim.parallel RUN_DIR
    worker_main(sys.argv[1])
