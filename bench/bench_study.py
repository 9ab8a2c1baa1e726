"""Benchmark of the study runner: throughput, cache, CLI start-up, executor overhead.

What is measured (``time.perf_counter`` around subprocesses or calls, wall clock):

* ``quickstart`` throughput: ``genlab run studies/quickstart.toml`` (3 cells) into a fresh run
  directory with ``--workers 1`` and ``--workers 2``; seconds, cells per minute and the speed-up
  of 2 workers over 1 (each a new process: imports included, as a user sees it).
* warm re-run: the same command again on the finished run directory (every cell cached).
* ``genlab --help`` start-up: median of 7 runs of a new interpreter.
* executor overhead per cell: a no-op cell function (no torch) on N = 8 and N = 40 cells, with
  ``LocalExecutor(2)`` and ``RayExecutor(2)`` (one local Ray instance of 2 CPUs for both sizes;
  its ``ray.init`` time is reported apart: ``genlab run --executor ray`` pays it once per run);
  the slope between the two sizes is the per-cell overhead, after one warm-up call of 2 cells.

``--quick``: a reduced quickstart (steps 500 -> 50), 3 --help runs, N = 4 and 24 cells.

Usage: ``.venv/bin/python bench/bench_study.py [--quick] [--out PATH] [--parts throughput startup overhead]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results" / "study.md"
GENLAB = [sys.executable, "-m", "genlab.cli"]


def noop_cell(config: dict[str, Any]) -> Any:
    """A cell that does nothing: what remains is the executor's own cost."""
    from genlab.study import CellOutput, QuantityRow

    return CellOutput(rows=[QuantityRow(q, 1.0, 1.0) for q in config["quantities"]])


def _timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=REPO)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return elapsed, done


def quickstart(folder: Path, quick: bool) -> list[str]:
    study = REPO / "studies" / "quickstart.toml"
    if quick:
        text = study.read_text(encoding="utf-8").replace("steps = 500", "steps = 50")
        study = folder / "quickstart_quick.toml"
        study.write_text(text, encoding="utf-8")
    rows, seconds = [], {}
    for workers in (1, 2):
        out = folder / f"run_w{workers}"
        seconds[workers], _ = _timed([*GENLAB, "run", str(study), "--out", str(out), "--workers", str(workers)])
        rows.append(f"| quickstart{' (steps 50)' if quick else ''}, {workers} worker{'s' if workers > 1 else ''} | "
                    f"{seconds[workers]:.1f} s | {3 * 60 / seconds[workers]:.1f} cells/min |")
    warm, _ = _timed([*GENLAB, "run", str(study), "--out", str(folder / "run_w2"), "--workers", "2"])
    rows.append(f"| warm re-run (3 of 3 cells cached) | {warm:.1f} s | |")
    return ["## Study throughput (quickstart, 3 cells)", "",
            "| run | wall | throughput |", "|---|---:|---:|", *rows, "",
            f"Speed-up of 2 workers over 1: {seconds[1] / seconds[2]:.2f}x (each run a new process, imports included).", ""]


def startup(repeats: int) -> list[str]:
    times = [_timed([*GENLAB, "--help"])[0] for _ in range(repeats)]
    return ["## `genlab --help` start-up", "",
            f"Median of {repeats}: {statistics.median(times) * 1e3:.0f} ms (min {min(times) * 1e3:.0f} ms, "
            f"max {max(times) * 1e3:.0f} ms), a new interpreter each time.", ""]


def _executor_seconds(kind: str, n_cells: int) -> float:
    from genlab.study import LocalExecutor, RayExecutor

    items = [(f"cell{i:04d}", {"quantities": ["train_loss"], "i": i}) for i in range(n_cells)]
    done: list[Any] = []
    executor = LocalExecutor(2) if kind == "local" else RayExecutor(2)
    start = time.perf_counter()
    executor.run(noop_cell, items, done.append)
    elapsed = time.perf_counter() - start
    assert len(done) == n_cells and all(r.status == "ok" for r in done), [r.error for r in done if r.status != "ok"]
    return elapsed


def executor_overhead(sizes: tuple[int, int]) -> list[str]:
    import ray

    rows = []
    for kind in ("local", "ray"):
        start_up = ""
        if kind == "ray":  # one instance for both sizes, started (and timed) here
            tick = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
            start_up = f"ray.init: {time.perf_counter() - tick:.2f} s"
        try:
            _executor_seconds(kind, 2)  # warm-up: Ray starts its worker processes lazily, on the first tasks
            small, large = (_executor_seconds(kind, n) for n in sizes)
        finally:
            if kind == "ray":
                ray.shutdown()
        per_cell = (large - small) / (sizes[1] - sizes[0])
        rows.append(f"| {kind} (2 workers) | {small:.2f} s | {large:.2f} s | {per_cell * 1e3:.1f} ms | "
                    f"{small - per_cell * sizes[0]:.2f} s | {start_up or 'in each call (worker spawn)'} |")
    return ["## Executor overhead (no-op cells)", "",
            "Per cell = slope between the two sizes; fixed = intercept (local: spawning the workers, "
            "in each call; Ray: submitting to an instance started once, whose start-up is given apart).", "",
            f"| executor | {sizes[0]} cells | {sizes[1]} cells | per cell | fixed | start-up |",
            "|---|---:|---:|---:|---:|---|", *rows, ""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced quickstart and fewer repeats (smoke test)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"markdown report (default {DEFAULT_OUT})")
    parser.add_argument("--parts", nargs="+", choices=("throughput", "startup", "overhead"),
                        default=["throughput", "startup", "overhead"], help="which measurements (default all)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="genlab-bench-study-"))
    try:
        lines = [f"# Study runner{' (--quick)' if args.quick else ''}", "",
                 f"Machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
                 f"load average before: {', '.join(f'{v:.2f}' for v in os.getloadavg())}.", ""]
        if "throughput" in args.parts:
            lines += quickstart(folder, args.quick)
        if "startup" in args.parts:
            lines += startup(3 if args.quick else 7)
        if "overhead" in args.parts:
            lines += executor_overhead((4, 24) if args.quick else (8, 40))
        lines += [f"Total benchmark wall time: {time.perf_counter() - started:.0f} s.", ""]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
