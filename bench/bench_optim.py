"""Cost of one training step of each genlab.optim optimizer against torch.optim.SGD.

Trains an MLP 64-256-256-10 (float32) on random mini-batches of 128 with genlab's training loop
(genlab.empirical.train) and reports the wall time per step, its ratio to SGD, and the gradient
evaluations per step (SAM/ASAM 2, Entropy-SGD L, the others 1). On a shared machine compare
only rows of one run: the ratios are the portable numbers.

    .venv/bin/python bench/bench_optim.py [--steps 200] [--out bench/results/optim.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from genlab.empirical import train
from genlab.settings import TrainSettings
from genlab.models import ArchSpec

CASES = {
    "sgd": (dict(optimizer="sgd", momentum=0.9), 1),
    "sam": (dict(optimizer="sam", momentum=0.9, sam_rho=0.05), 2),
    "asam": (dict(optimizer="asam", momentum=0.9, sam_rho=0.5), 2),
    "entropy_sgd (L=5)": (dict(optimizer="entropy_sgd", entropy_sgd_steps=5, entropy_sgd_gamma=0.03), 5),
    "lars": (dict(optimizer="lars", momentum=0.9, lars_trust=0.02), 1),
    "lamb": (dict(optimizer="lamb"), 1),
}


def time_case(kwargs: dict, steps: int, x: np.ndarray, y: np.ndarray, repeats: int = 3) -> float:
    """Best-of-``repeats`` seconds per step (measurement only at the start and the end)."""
    best = float("inf")
    for _ in range(repeats):
        net = ArchSpec(depth=2, out_dim=10).to_torch(256, input_shape=(64,), seed=0, dtype=torch.float32)
        settings = TrainSettings(lr=0.01, steps=steps, batch_size=128, dtype="float32", measure_every=steps, **kwargs)
        start = time.perf_counter()
        train(net, x, y, settings)
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "optim.md")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2048, 64)).astype(np.float32)
    y = rng.normal(size=(2048, 10)).astype(np.float32)
    rows, base = [], None
    for name, (kwargs, evals) in CASES.items():
        seconds = time_case(kwargs, args.steps, x, y)
        base = seconds if base is None else base
        rows.append(f"| {name} | {evals} | {1e3 * seconds:.2f} | {seconds / base:.2f} |")
        print(rows[-1], flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = "\n".join([
        "# genlab.optim: time per training step",
        "",
        f"MLP 64-256-256-10 float32, batch 128, {args.steps} steps, best of 3; torch {torch.__version__}, "
        f"{platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}, load average {load:.1f}.",
        "",
        "| optimizer | gradient evaluations / step | ms / step | × SGD |",
        "| --- | ---: | ---: | ---: |",
        *rows,
        "",
    ])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
