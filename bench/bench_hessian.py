"""Benchmark: top Hessian eigenvalues, genlab's ``top_eigenvalues`` vs PyHessian's power iteration.

Problems (PyTorch default init, float32, CPU, seed 0, n = 1024 standard-normal inputs and
targets, objective L = mean_i 1/2 (f(x_i) - y_i)^2, genlab's "mse"):

* MLP 100-512-512-1 (``nn.Linear`` / ``nn.Tanh``), P = 314,881;
* CNN on 3x16x16 inputs: conv 3->16 (3x3) - tanh - conv 16->16 (3x3, stride 2) - tanh - linear
  1024->1, P = 3,793.

Methods, from the same weights:

* ``genlab``: ``top_eigenvalues(module, x, y, k, tol=1e-3, seed=0)``: Lanczos with full
  reorthogonalisation stopped on the Ritz values' error bounds, on double-backward
  Hessian-vector products (Pearlmutter 1994) over a graph built once per call.
* ``power iteration``: PyHessian 0.1's ``hessian.eigenvalues`` (Yao et al. 2020) re-implemented
  here (PyHessian is not a dependency): the same double-backward products on a graph built once,
  ``v <- Hv / (||Hv|| + 1e-6)``, stopped when the Rayleigh quotient changes by < 1e-3 relative
  (``|dlambda| / (|lambda| + 1e-6)``, at most 100 iterations per eigenvalue), the top k by
  deflation (each iterate re-orthogonalised against the eigenvectors found). Started from
  ``torch.randn`` after ``torch.manual_seed(0)``, as PyHessian draws.

"first call" runs each method once in a fresh process (imports and model set-up excluded: what a
first sharpness measurement after training pays); "warm" is the median of 3 runs after it, the
two methods interleaved in one process. Eigenvalues are compared with a tight reference
(``top_eigenvalues`` at tol=1e-8). Reports a markdown table, printed and written to
``bench/results/hessian.md``.

Usage: ``.venv/bin/python bench/bench_hessian.py [--out PATH]`` (~2 min on 2 cores, most of it
the power iteration's top 10 on the CNN).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genlab.empirical._curvature import top_eigenvalues
from genlab.empirical._train import per_sample_loss

N = 1024
REL_TOL = 1e-3
MAX_ITER = 100
REPEATS = 3
NETS = ("mlp", "cnn")
METHODS = ("genlab", "power")


def problem(net: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    if net == "mlp":
        module: nn.Module = nn.Sequential(nn.Linear(100, 512), nn.Tanh(), nn.Linear(512, 512), nn.Tanh(), nn.Linear(512, 1))
        x = torch.randn(N, 100, generator=g)
    else:
        module = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.Tanh(), nn.Conv2d(16, 16, 3, stride=2, padding=1), nn.Tanh(),
            nn.Flatten(), nn.Linear(16 * 8 * 8, 1),
        )
        x = torch.randn(N, 3, 16, 16, generator=g)
    return module, x, torch.randn(N, 1, generator=g)


def power_iteration(module: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[float, int]:
    """PyHessian 0.1's deflated power iteration; returns (largest eigenvalue found, HVPs)."""
    params = [p for p in module.parameters() if p.requires_grad]
    grads = torch.autograd.grad(per_sample_loss(module(x), y, "mse").mean(), params, create_graph=True)
    size = sum(p.numel() for p in params)

    def hvp(v: torch.Tensor) -> torch.Tensor:
        dot = sum((g * piece.view_as(g)).sum() for g, piece in zip(grads, v.split([p.numel() for p in params])))
        return torch.cat([h.flatten() for h in torch.autograd.grad(dot, params, retain_graph=True)])

    torch.manual_seed(0)
    values: list[float] = []
    vectors: list[torch.Tensor] = []
    hvps = 0
    for _ in range(k):
        v = torch.randn(size, dtype=params[0].dtype)
        v = v / (v.norm() + 1e-6)
        value = None
        for _ in range(MAX_ITER):
            for u in vectors:
                v = v - (v @ u) * u
            v = v / (v.norm() + 1e-6)
            hv = hvp(v)
            hvps += 1
            current = float(hv @ v)
            v = hv / (hv.norm() + 1e-6)
            if value is not None and abs(value - current) / (abs(value) + 1e-6) < REL_TOL:
                break
            value = current
        values.append(value if value is not None else current)
        vectors.append(v)
    return max(values), hvps


def run(method: str, net: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[float, int, float]:
    """(eigenvalue, HVPs, seconds) of one solve."""
    start = time.perf_counter()
    if method == "genlab":
        result = top_eigenvalues(module, x, y, k=k, tol=REL_TOL, seed=0)
        value, hvps = float(result.values[0]), result.hvps
    else:
        value, hvps = power_iteration(module, x, y, k)
    return value, hvps, time.perf_counter() - start


def first_call(method: str, net: str) -> float:
    """Seconds of the first top-1 solve in a fresh process."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_hessian as b; "
        "m, x, y = b.problem(sys.argv[3]); print(json.dumps(b.run(sys.argv[2], sys.argv[3], m, x, y, 1)[2]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), method, net], capture_output=True, text=True, check=True
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hessian.md")
    args = parser.parse_args()
    load_before = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    lines = [
        "# Top Hessian eigenvalues: genlab (Lanczos, double-backward HVP) vs PyHessian power iteration",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); load average before: {load_before}. "
        f"Tolerance {REL_TOL:g}; n = {N}, float32. Times in seconds; HVPs: Hessian-vector products.",
        "",
        "| net | P | k | method | first call (s) | warm (s) | HVPs | largest eigenvalue | rel. error | power / genlab |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for net in NETS:
        firsts = {method: first_call(method, net) for method in METHODS}
        module, x, y = problem(net)
        size = sum(p.numel() for p in module.parameters())
        exact = float(top_eigenvalues(module, x, y, k=1, tol=1e-8, seed=1).values[0])
        for k in (1, 10):
            times: dict[str, list[float]] = {method: [] for method in METHODS}
            found: dict[str, tuple[float, int]] = {}
            for _ in range(REPEATS if k == 1 else 1):
                for method in METHODS:
                    value, hvps, seconds = run(method, net, module, x, y, k)
                    times[method].append(seconds)
                    found[method] = (value, hvps)
            warm = {method: statistics.median(times[method]) for method in METHODS}
            for method in METHODS:
                value, hvps = found[method]
                first = f"{firsts[method]:.2f}" if k == 1 else "-"
                ratio = f"{warm['power'] / warm['genlab']:.2f}x" if method == "genlab" else ""
                name = "genlab top_eigenvalues" if method == "genlab" else "power iteration (PyHessian 0.1)"
                lines.append(
                    f"| {net} | {size} | {k} | {name} | {first} | {warm[method]:.2f} | {hvps} | {value:.6g} | "
                    f"{abs(value - exact) / abs(exact):.1e} | {ratio} |"
                )
    lines += ["", f"Load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
