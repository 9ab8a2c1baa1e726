"""Benchmark of the kernel machinery at n = 2000: analytic NTK and the function-space solvers.

What is measured (``time.perf_counter``, wall clock, float64, CPU):

* ``analytic_kernel`` of a one-hidden-layer ReLU network (``ArchSpec(depth=1)``, NTK
  parametrization, w_std = 1, no bias) on n = 2000 Gaussian inputs of dimension 32: the first call
  (jax/neural-tangents import and XLA compilation included) and a second, warm call. Checked
  against the arc-cosine closed form (Cho & Saul 2009; Jacot et al. 2018):
  ``K0 = x.x'/d``, ``Θ = K0 (π - θ)/(2π) + sqrt(K0(x,x) K0(x',x')) (sin θ + (π - θ) cos θ)/(2π)``,
  reported as the relative Frobenius error.
* ``kernel_regression`` (ridgeless, eigendecomposition of the n x n kernel) with 500 test points,
  ``gd_dynamics`` at 20 step counts and ``gradient_flow`` at 20 times on the same kernel.

``--quick``: n = 500.

Usage: ``.venv/bin/python bench/bench_kernels.py [--quick] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results" / "kernels.md"
DIM, N_TEST = 32, 500


def arccos_ntk(x: np.ndarray) -> np.ndarray:
    """NTK of x -> Dense(1) . ReLU . Dense(width), NTK parametrization, unit weight variance."""
    k0 = x @ x.T / x.shape[1]
    norms = np.sqrt(np.diag(k0))
    cos = np.clip(k0 / np.outer(norms, norms), -1.0, 1.0)
    theta = np.arccos(cos)
    k1 = np.outer(norms, norms) * (np.sin(theta) + (np.pi - theta) * cos) / (2 * np.pi)
    return k1 + k0 * (np.pi - theta) / (2 * np.pi)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 500 (smoke test)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"markdown report (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    n = 500 if args.quick else 2000
    started = time.perf_counter()
    from genlab.kernels import analytic_kernel, gd_dynamics, gradient_flow, kernel_regression
    from genlab.models import ArchSpec

    rng = np.random.default_rng(0)
    x, x_test = rng.normal(size=(n, DIM)), rng.normal(size=(N_TEST, DIM))
    y = np.sin(x[:, 0]) + 0.1 * rng.normal(size=n)
    spec = ArchSpec(kind="fc", depth=1, activation="relu", parametrization="ntk", w_std=1.0, b_std=None)

    rows = []
    tick = time.perf_counter()
    kernel = analytic_kernel(spec, x)
    rows.append((f"analytic_kernel n={n} (first call: imports + compile)", time.perf_counter() - tick))
    tick = time.perf_counter()
    kernel = analytic_kernel(spec, x)
    rows.append((f"analytic_kernel n={n} (warm)", time.perf_counter() - tick))
    reference = arccos_ntk(x)
    agreement = np.linalg.norm(kernel - reference) / np.linalg.norm(reference)
    k_test = analytic_kernel(spec, x_test, x)

    tick = time.perf_counter()
    kernel_regression(kernel, y, k_test)
    rows.append((f"kernel_regression n={n}, m={N_TEST} (ridgeless)", time.perf_counter() - tick))
    lr = n / np.linalg.eigvalsh(kernel)[-1]  # half the stability edge 2n/λmax
    tick = time.perf_counter()
    gd_dynamics(kernel, y, k_test, lr=lr, steps=np.unique(np.geomspace(1, 10**5, 20).astype(int)))
    rows.append((f"gd_dynamics n={n}, m={N_TEST}, 20 step counts", time.perf_counter() - tick))
    tick = time.perf_counter()
    gradient_flow(kernel, y, k_test, t=np.geomspace(1e-2, 1e4, 20))
    rows.append((f"gradient_flow n={n}, m={N_TEST}, 20 times", time.perf_counter() - tick))

    lines = [f"# Kernels at n = {n}{' (--quick)' if args.quick else ''}", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
             f"load average before: {', '.join(f'{v:.2f}' for v in os.getloadavg())}. Inputs N(0, I_{DIM}), float64.", "",
             "| operation | wall |", "|---|---:|", *[f"| {name} | {seconds:.2f} s |" for name, seconds in rows], "",
             f"Analytic NTK vs the arc-cosine closed form: relative Frobenius error {agreement:.1e}.", "",
             f"Total benchmark wall time: {time.perf_counter() - started:.0f} s.", ""]
    text = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
