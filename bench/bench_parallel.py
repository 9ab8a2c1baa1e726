"""Throughput of the parallel optimizers on this machine: samples per second with 1 and 2
workers, and communication time per round.

Runs `genlab.parallel` (spawned gloo workers, one thread each) on scikit-learn's digits
with an fc net (one hidden layer of 128), batch 32 per worker, tau = 4, for EASGD (one
all-reduce of the parameter vector per round), local SGD (one all-reduce, averaging) and
data-parallel SGD (a gradient all-reduce at every step). Reported per run:

- samples/s: gradient samples processed by all workers per second of training (the measuring
  of the center by rank 0 between rounds is excluded);
- comm ms/round: wall time of the last step of each round, which carries the exchange (the
  SGD update in it is negligible: one axpy on ~10k parameters), mean over workers;
- wall s: the whole run including process start-up (torch import) and measurements.

Timings depend on the load: the load average before and after is written with the table;
compare runs only on the same, quiet machine.

Usage: ``.venv/bin/python bench/bench_parallel.py [--quick] [--out bench/results/parallel.md]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CONFIG = {
    "name": "bench_parallel",
    "task": {"name": "digits", "n_train": 1000, "n_test": 797},
    "model": {"kind": "fc", "depth": 1, "activation": "relu", "parametrization": "standard", "w_std": 1.4, "b_std": 0.1},
    "parallel": {"lr": 0.1, "width": 128, "batch_size": 32, "samples": 64000, "tau": 4, "measurements": 1,
                 "sharpness_samples": 100},
    "sweep": {"method": ["easgd", "local_sgd", "data_parallel"], "nproc": [1, 2]},
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the samples")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "parallel.md"))
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from genlab.parallel import train_parallel

    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in CONFIG.items()}
    if args.quick:
        config["parallel"]["samples"] //= 4
    load_before = os.getloadavg()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        summary = train_parallel(config, Path(tmp) / "run", launcher="spawn")
    total = time.perf_counter() - start
    load_after = os.getloadavg()
    lines = [
        "# Parallel optimizers: throughput and communication",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}; gloo on CPU, one thread per worker.",
        f"Load average (1, 5, 15 min) before {tuple(round(x, 1) for x in load_before)}, after "
        f"{tuple(round(x, 1) for x in load_after)}; total {total:.0f} s.",
        f"Task: digits (1000 train), fc 64-{config['parallel']['width']}-10, batch 32 per worker, tau 4, "
        f"{config['parallel']['samples']} samples per run.",
        "",
        "| method | workers | samples/s | comm ms/round | rounds | communications | wall s | test error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary.itertuples(index=False):
        lines.append(f"| {row.method} | {row.nproc} | {row.samples_per_second:.0f} | {1e3 * row.comm_seconds_per_round:.2f} | "
                     f"{row.rounds} | {row.communications} | {row.wall_seconds:.1f} | {row.test_error:.4f} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
