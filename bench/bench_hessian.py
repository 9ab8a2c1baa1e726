"""Benchmark: time to the top Hessian eigenvalue, genlab's ``top_eigenvalues`` vs power iteration.

Problem: MLP 100-512-512-1 (``torch.nn.Sequential`` of ``nn.Linear`` and ``nn.Tanh``, PyTorch
default init, float32, CPU), n = 1024 standard-normal inputs and targets, objective
L = mean_i 1/2 (f(x_i) - y_i)^2 (genlab's "mse"), seed 0.

* ``genlab``: ``top_eigenvalues(module, x, y, k=1, tol=1e-3, seed=0)`` -- ARPACK Lanczos on the
  curvlinops Hessian operator (forward-over-reverse products), BLAS limited to one thread
  around the solver.
* ``power iteration``: PyHessian-style (Yao et al. 2020): ``v <- Hv / ||Hv||`` with the HVP by
  double backward on a graph built once (``autograd.grad(g . v)``, the cheaper product here),
  stopped when the Rayleigh quotient changes by < 1e-3 relative, from the same seeded start.

Both are timed end to end (``time.perf_counter``, one run each after a warm-up HVP of each
kind), and their eigenvalues compared with a tight reference (``eigsh`` at tol=1e-8). Reports a
markdown table, printed and written to ``bench/results/hessian.md``.

Usage: ``.venv/bin/python bench/bench_hessian.py [--out PATH]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from genlab.empirical._curvature import hessian_operator, top_eigenvalues
from genlab.empirical._train import per_sample_loss

N, WIDTH, DIM = 1024, 512, 100
REL_TOL = 1e-3


def problem() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(DIM, WIDTH), nn.Tanh(), nn.Linear(WIDTH, WIDTH), nn.Tanh(), nn.Linear(WIDTH, 1))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, DIM, generator=g)
    y = torch.randn(N, 1, generator=g)
    return module, x, y


def power_iteration(module: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[float, int]:
    """PyHessian-style power iteration; returns (eigenvalue, HVPs)."""
    params = [p for p in module.parameters() if p.requires_grad]
    loss = per_sample_loss(module(x), y, "mse").mean()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    size = sum(p.numel() for p in params)
    v = torch.as_tensor(np.random.default_rng(seed).standard_normal(size), dtype=params[0].dtype)
    v /= v.norm()
    previous, hvps = None, 0
    while True:
        pieces = list(v.split([p.numel() for p in params]))
        dot = sum((g * piece.view_as(g)).sum() for g, piece in zip(grads, pieces))
        hv = torch.cat([h.flatten() for h in torch.autograd.grad(dot, params, retain_graph=True)])
        hvps += 1
        rayleigh = float(v @ hv)
        if previous is not None and abs(rayleigh - previous) < REL_TOL * abs(rayleigh):
            return rayleigh, hvps
        previous = rayleigh
        v = hv / hv.norm()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hessian.md")
    args = parser.parse_args()
    module, x, y = problem()
    size = sum(p.numel() for p in module.parameters())

    op = hessian_operator(module, x, y)  # warm-up: one product of each kind
    start = time.perf_counter()
    op.matvec(np.ones(size))
    per_hvp_curvlinops = time.perf_counter() - start
    loss = per_sample_loss(module(x), y, "mse").mean()
    params = list(module.parameters())
    grads = torch.autograd.grad(loss, params, create_graph=True)
    mid = time.perf_counter()
    torch.autograd.grad(sum(g.sum() for g in grads), params)
    per_hvp_double_backward = time.perf_counter() - mid
    del grads, loss

    start = time.perf_counter()
    result = top_eigenvalues(module, x, y, k=1, tol=REL_TOL, seed=0)
    genlab_seconds = time.perf_counter() - start

    start = time.perf_counter()
    power_value, power_hvps = power_iteration(module, x, y, seed=0)
    power_seconds = time.perf_counter() - start

    reference = top_eigenvalues(module, x, y, k=1, tol=1e-8, seed=1)
    exact = float(reference.values[0])
    genlab_value = float(result.values[0])
    rows = [
        ("genlab top_eigenvalues (eigsh, curvlinops HVP)", genlab_seconds, result.hvps, genlab_value),
        ("power iteration (double-backward HVP)", power_seconds, power_hvps, power_value),
    ]
    lines = [
        f"# Top Hessian eigenvalue: MLP {DIM}-{WIDTH}-{WIDTH}-1 (tanh, float32), n = {N}, P = {size}",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads). Stop: {REL_TOL:g} relative. Reference eigenvalue "
        f"(eigsh tol=1e-8, {reference.hvps} HVPs): {exact:.6g}.",
        f"First (warm-up) HVP: curvlinops (jvp of jacrev) {per_hvp_curvlinops * 1e3:.0f} ms, "
        f"double backward (on a built graph) {per_hvp_double_backward * 1e3:.0f} ms.",
        "",
        "| method | time (s) | HVPs | s / HVP | eigenvalue | rel. error |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, seconds, hvps, value in rows:
        lines.append(
            f"| {name} | {seconds:.2f} | {hvps} | {seconds / hvps:.3f} | {value:.6g} | {abs(value - exact) / abs(exact):.1e} |"
        )
    lines += ["", f"Ratio power iteration / genlab time: {power_seconds / genlab_seconds:.2f}x."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
