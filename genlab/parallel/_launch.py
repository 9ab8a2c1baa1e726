"""Starting a run's worker group, joining it from a worker, and the cache of finished runs.

Workers are processes of one ``torch.distributed`` process group (gloo on CPU, nccl for CUDA
tensors), launched by ``torchrun`` (elastic agent: ``--max-restarts``) or by
``torch.multiprocessing`` spawning the same entry point (``launcher="spawn"``); both set
``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``, which :func:`init_from_env` reads.

A run directory holds ``run.json``, the resolved config of one (method, nproc) run; a run whose
``result.json`` exists beside an identical ``run.json`` is finished and reused.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["LAUNCHERS", "free_port", "init_from_env", "launch", "prepare_run", "run_cached", "torchrun_command"]

LAUNCHERS = ("torchrun", "spawn")


def init_from_env(backend: str = "auto", timeout_s: float = 600.0) -> str:
    """Join the process group described by the launcher's environment; returns the backend.

    ``backend="auto"`` picks nccl when CUDA is available, else gloo. ``timeout_s`` bounds every
    collective; it is long because a dead peer is detected by torchrun's agent (which watches the
    worker processes and restarts the group), not by the timeout, while a restarted group on a
    busy machine can take minutes to reach its first collective (measured: > 120 s at load 12
    on 2 cores).
    """
    import torch
    import torch.distributed as dist

    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"parallel.backend must be 'auto', 'gloo' or 'nccl'; got {backend!r}")
    if dist.is_available() and dist.is_initialized():
        return backend
    timeout = datetime.timedelta(seconds=timeout_s)
    if "TORCHELASTIC_RESTART_COUNT" not in os.environ:  # spawned or plain launch: env:// as usual
        dist.init_process_group(backend=backend, timeout=timeout)
        return backend
    # Under torchrun the workers talk through the agent's store, which outlives a restart of the
    # group; the keys of the previous incarnation (e.g. gloo's listening addresses of dead
    # workers) are still there and a restarted group reads them (measured: "connectFullMesh
    # failed ... Connection refused" after a kill, torch 2.13). A prefix unique to this
    # incarnation (restart count and world size: a restart after a failure increments the first,
    # a membership change alters the second) keeps each incarnation's keys apart.
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=not agent_store and rank == 0, timeout=timeout, multi_tenant=not agent_store)
    prefix = f"genlab/restart{os.environ['TORCHELASTIC_RESTART_COUNT']}/world{world}"
    dist.init_process_group(backend=backend, store=dist.PrefixStore(prefix, store), rank=rank, world_size=world,
                            timeout=timeout)
    return backend


def free_port() -> int:
    """A TCP port free on this host now (for ``MASTER_PORT`` of a spawned group)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun_command(run_dir: str | Path, nproc: int, *, max_restarts: int = 3, rendezvous: str | None = None,
                     nnodes: str = "1") -> list[str]:
    """The torchrun command line that runs the workers of ``run_dir`` with ``nproc`` processes.

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
                  "-m", "genlab.parallel", str(run_dir)]


def _spawned(local_rank: int, world: int, port: int, run_dir: str) -> None:
    """Entry of a worker started by torch.multiprocessing: the environment torchrun would set."""
    from genlab.parallel._worker import worker_main

    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    worker_main(run_dir)


def launch(run_dir: str | Path, nproc: int, *, launcher: str = "torchrun", max_restarts: int = 3,
           timeout_s: float | None = None) -> None:
    """Run the workers of ``run_dir/run.json`` as ``nproc`` processes; raises if the group fails."""
    run_dir = Path(run_dir)
    if launcher == "spawn":
        import torch.multiprocessing as mp

        mp.start_processes(_spawned, args=(nproc, free_port(), str(run_dir)), nprocs=nproc, join=True, start_method="spawn")
        return
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    proc = subprocess.run(torchrun_command(run_dir, nproc, max_restarts=max_restarts), env=env, capture_output=True,
                          text=True, timeout=timeout_s, check=False)
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


def run_cached(cfg: dict[str, Any], method: str, nproc: int, run_dir: Path, *, launcher: str,
               max_restarts: int) -> tuple[dict[str, Any], bool]:
    """One run's ``result.json``, computed (and its ``wall_seconds`` added) unless finished.

    Returns:
        The result and whether it was computed now (False: reused from the cache).
    """
    fresh = prepare_run(cfg, method, nproc, run_dir)
    result_json = run_dir / "result.json"
    if fresh:
        start = time.perf_counter()
        launch(run_dir, nproc, launcher=launcher, max_restarts=max_restarts)
        wall = time.perf_counter() - start
        result = json.loads(result_json.read_text(encoding="utf-8"))
        result["wall_seconds"] = wall
        result_json.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return json.loads(result_json.read_text(encoding="utf-8")), fresh
