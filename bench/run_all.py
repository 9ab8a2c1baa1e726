"""Run every benchmark and write one markdown report, ``bench/results/REPORT.md``.

Each benchmark runs in its own process (fresh imports, no state shared), one after the other,
and writes its own section file next to the report; the report starts with a summary (status
and wall time of each) and the machine, the git commit and the load before and after, then
gives each section. A benchmark that fails is reported as failed with its last lines of
output; the others still run. Timings are only comparable between runs on the same, quiet
machine: the report records the load average so that a busy run can be recognised.

Benchmarks: empirical NTK vs neural-tangents and the matmul peak (bench_empirical_ntk.py),
Hessian top eigenvalue vs power iteration (bench_hessian.py), analytic kernel and function-space
solvers at n = 2000 (bench_kernels.py), study throughput with 1 and 2 workers, warm re-run,
``genlab --help`` start-up and Ray vs local executor overhead (bench_study.py), time per step of
each optimizer of genlab.optim against SGD (bench_optim.py), and samples per second and
communication time per round of the torch.distributed optimizers with 1 and 2 workers
(bench_parallel.py).

``--quick``: every benchmark's reduced pass (the Hessian and optimizer benchmarks have none and
are skipped),
written to ``bench/results/quick/`` so that it never replaces a full report.

Usage: ``.venv/bin/python bench/run_all.py [--quick] [--only NAME ...]``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
#: name -> (script, has a --quick pass, section file)
BENCHMARKS = {
    "empirical_ntk": ("bench_empirical_ntk.py", True, "empirical_ntk.md"),
    "hessian": ("bench_hessian.py", False, "hessian.md"),
    "kernels": ("bench_kernels.py", True, "kernels.md"),
    "study": ("bench_study.py", True, "study.md"),
    "optim": ("bench_optim.py", False, "optim.md"),
    "parallel": ("bench_parallel.py", True, "parallel.md"),
}


def _git_commit() -> str:
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() + (" (dirty tree)" if dirty.stdout.strip() else "") if done.returncode == 0 else "unknown"


def _load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="reduced pass of each benchmark (smoke test)")
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    args = parser.parse_args(argv)
    folder = BENCH / "results" / ("quick" if args.quick else "")
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    started, load_before = _dt.datetime.now(_dt.timezone.utc), _load()
    summary, sections = [], []
    for name in args.only or list(BENCHMARKS):
        script, has_quick, section = BENCHMARKS[name]
        if args.quick and not has_quick:
            summary.append(f"| {name} | skipped (no --quick pass) | – |")
            continue
        command = [sys.executable, str(BENCH / script), "--out", str(folder / section)] + (["--quick"] if args.quick else [])
        print(f"[run_all] {name}: {' '.join(command[1:])}", file=sys.stderr, flush=True)
        tick = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - tick
        if done.returncode == 0 and (folder / section).is_file():
            summary.append(f"| {name} | ok | {seconds:.0f} s |")
            sections.append((folder / section).read_text(encoding="utf-8").replace("\n# ", "\n## ", 1))
        else:
            tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
            summary.append(f"| {name} | FAILED (exit {done.returncode}) | {seconds:.0f} s |")
            sections.append(f"# {name}: FAILED\n\n```\n{tail}\n```\n")
    report = [
        f"# genlab benchmarks{' (--quick: reduced sizes, smoke test only)' if args.quick else ''}", "",
        f"- date: {started.isoformat(timespec='seconds')}; git {_git_commit()}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, {platform.platform()}",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {_load()} "
        f"(on {os.cpu_count()} cores: anything near or above that means other jobs shared the machine)",
        "", "| benchmark | status | wall |", "|---|---|---:|", *summary, "",
        *sections,
    ]
    (folder / "REPORT.md").write_text("\n".join(report), encoding="utf-8")
    print(folder / "REPORT.md")
    return 0 if all("FAILED" not in line for line in summary) else 1


if __name__ == "__main__":
    sys.exit(main())
