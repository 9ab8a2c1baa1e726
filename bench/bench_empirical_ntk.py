"""Benchmark of genlab's empirical NTK against the torch.func and neural-tangents baselines.

What is measured, on identical weights and inputs (float32, CPU):

* ``genlab``: ``genlab.kernels.empirical_ntk(module, x, method="auto")`` (per-layer factored
  products / per-sample weight gradients for nn.Linear and nn.Conv2d layers).
* ``torch.func JC``: ``empirical_ntk(module, x, method="jacobian")`` -- per-sample Jacobians with
  ``vmap(jacrev)`` per block, then their contraction ``J J^T`` (the general fallback).
* ``NT-JC`` / ``NT-NVP``: neural-tangents ``empirical_ntk_fn(f, trace_axes=(-1,), vmap_axes=0,
  implementation=1 | 2)`` (JACOBIAN_CONTRACTION / NTK_VECTOR_PRODUCTS), jitted, on a JAX forward
  pass (jax.numpy / ``lax.conv_general_dilated`` in NCHW) built from the torch module's weights.
  The JAX forward is checked against torch's outputs (relative error <= 1e-5) before timing.
  NT's ``trace_axes`` gives the MEAN over outputs; it is multiplied by the number of outputs so
  that every kernel is the SUM over outputs. Compilation is done ahead of time
  (``jit(...).lower(...).compile()``) and reported separately. Each NT measurement runs in its own
  subprocess (this script with ``--nt-worker``), so that an XLA abort (out of memory) becomes a
  "failed" row instead of killing the benchmark. Where a case sets an NT block size, NT is
  evaluated on square blocks of the upper block triangle (mirrored), compiled once for the block
  shape; where a case also limits the timed block pairs, only the first block row is computed and
  timed and the time is extrapolated to the whole upper triangle (all pairs have the same shape;
  the agreement is then measured on the computed rows only).

Timing: ``time.perf_counter`` around the whole call (including the conversion to numpy), one
warm-up call, then the median of 3 runs -- of 1 run when the warm-up took more than 10 s, and
the warm-up itself (reported as such) when it took more than 60 s. For blocked NT the warm-up is a
single block pair, and a first timed run over 10 s is the only one. ``--quick``: MLP n = 256 only,
warm-up + 1 run.

Agreement: relative Frobenius error ``||K_genlab - K_ref||_F / ||K_ref||_F``.

Fallback throughput: nominal flops of the contraction ``2 n1 n2 K p`` (full n1 x n2, K outputs,
p parameters; the Jacobian build is NOT counted in the flops but IS included in the time, and
genlab's symmetric path evaluates only the upper block triangle) divided by the time of
``method="jacobian"``, compared with the best float32 ``torch.mm`` rate measured here on square
N = 2048 and 4096 matrices just before each case.

Threads: torch uses its default thread count (reported); ``OMP_WAIT_POLICY`` defaults to PASSIVE
here (see below), and the report records how much CPU other processes used during each case.

Usage: ``.venv/bin/python bench/bench_empirical_ntk.py [--quick] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

# Before torch loads: with libgomp's default (spin) wait policy, torch's 2 OpenMP threads made
# genlab's MLP path ~30x slower whenever another process held one of the 2 cores (measured here);
# PASSIVE removes that. Set OMP_WAIT_POLICY=ACTIVE to measure the default behaviour.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import nn  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_OUT = ROOT / "bench" / "results" / "empirical_ntk.md"
FORWARD_RTOL = 1e-5
SHORT_RUN_S = 10.0  # a warm-up under this gets 3 timed runs, else 1
LONG_RUN_S = 60.0  # a warm-up (of the full call) over this is itself the timing
WORKER_TIMEOUT_S = 900
BUSY_CORES = 0.25  # other processes' average CPU use (cores) above which the report warns
NT_IMPLEMENTATIONS = {1: "NT-JC", 2: "NT-NVP"}
TARGETS = {"MLP n=1024": 60.0, "CNN n=256": 2.0}  # genlab speed-up over torch.func JC (the issue)


# ----------------------------------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One benchmark case: a module family, a sample count and how NT is evaluated."""

    name: str
    kind: str  # "mlp" or "cnn"
    n: int
    nt_block: dict[int, int | None] = field(default_factory=dict)  # implementation -> block
    nt_max_pairs: dict[int, int | None] = field(default_factory=dict)  # timed block pairs


def build_module(kind: str, seed: int = 0) -> nn.Sequential:
    """The benchmark networks, torch default initialisation, float32."""
    torch.manual_seed(seed)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(100, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 1))
    if kind == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(32 * 28 * 28, 10),
        )
    raise ValueError(f"unknown kind {kind!r}")


def make_inputs(kind: str, n: int, seed: int = 1) -> torch.Tensor:
    """Standard Gaussian inputs of the module's input shape."""
    shape = (100,) if kind == "mlp" else (1, 28, 28)
    gen = torch.Generator().manual_seed(seed)
    return torch.randn((n, *shape), generator=gen, dtype=torch.float32)


def cases(quick: bool) -> list[Case]:
    mlp256 = Case("MLP n=256", "mlp", 256)
    if quick:
        return [mlp256]
    # NTK_VECTOR_PRODUCTS on the CNN asks XLA for ~18 GB in one call and costs ~n1*n2*K JVPs:
    # blocks of 32, first block row timed and extrapolated. JC fits in one call (~6 GB peak).
    cnn = Case("CNN n=256", "cnn", 256, nt_block={1: None, 2: 32}, nt_max_pairs={2: 8})
    return [mlp256, Case("MLP n=1024", "mlp", 1024), cnn]


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------


@dataclass
class Timing:
    seconds: float  # median of the timed runs (or the warm-up, see ``runs``)
    runs: str  # how it was obtained, for the table
    compile_s: float | None = None
    extrapolated: str | None = None


def measure(fn: Callable[[], Any], quick: bool, warmup: Callable[[], Any] | None = None) -> tuple[Timing, Any]:
    """Warm-up, then the median of 3 runs (1 run if the warm-up -- or, after a partial ``warmup``,
    the first run -- took > 10 s; the warm-up itself if it was the full call and took > 60 s).
    Returns the timing and the last result."""
    full_warmup = warmup is None
    t0 = time.perf_counter()
    result = (warmup or fn)()
    warm = time.perf_counter() - t0
    if full_warmup and warm > LONG_RUN_S and not quick:
        return Timing(warm, "warm-up only (> 60 s)"), result
    count = 1 if quick or (full_warmup and warm > SHORT_RUN_S) else 3
    runs: list[float] = []
    while len(runs) < count and not (runs and runs[0] > SHORT_RUN_S):  # a partial warm-up: decide now
        t0 = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t0)
    return Timing(float(np.median(runs)), f"1 warm-up + {len(runs)}"), result


def matmul_peak(quick: bool) -> dict[int, float]:
    """Best float32 torch.mm rate (GFLOP/s) on square N x N matrices."""
    rates = {}
    gen = torch.Generator().manual_seed(0)
    for size, reps in ((2048, 3), (4096, 2)) if quick else ((2048, 5), (4096, 3)):
        a = torch.randn(size, size, generator=gen)
        b = torch.randn(size, size, generator=gen)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(reps):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
        rates[size] = 2 * size**3 / best / 1e9
    return rates


def cpu_snapshot() -> tuple[float, float, float]:
    """(wall time, busy CPU seconds of the whole machine, CPU seconds of this process and its
    finished children); Linux /proc/stat, NaN elsewhere."""
    try:
        fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # minus idle, iowait
    except (OSError, ValueError, IndexError):
        busy = float("nan")
    t = os.times()
    return time.perf_counter(), busy, t.user + t.system + t.children_user + t.children_system


def other_cpu_use(since: tuple[float, float, float]) -> float:
    """Average number of cores used by other processes since ``since``."""
    now = cpu_snapshot()
    return max(((now[1] - since[1]) - (now[2] - since[2])) / (now[0] - since[0]), 0.0)


def rel_frobenius(k: np.ndarray, ref: np.ndarray) -> float:
    """||K - K_ref||_F / ||K_ref||_F over the entries that ``ref`` has (NaN = not computed)."""
    mask = np.isfinite(ref)
    diff = k.astype(np.float64)[mask] - ref.astype(np.float64)[mask]
    return float(np.linalg.norm(diff) / np.linalg.norm(ref.astype(np.float64)[mask]))


# ----------------------------------------------------------------------------------------------
# neural-tangents, in a subprocess
# ----------------------------------------------------------------------------------------------


def layer_specs(module: nn.Sequential) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """A description of the Sequential for the JAX forward pass, and its weights in order."""
    specs: list[dict[str, Any]] = []
    weights: list[np.ndarray] = []
    for layer in module:
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            spec: dict[str, Any] = {"op": "linear" if isinstance(layer, nn.Linear) else "conv2d"}
            if isinstance(layer, nn.Conv2d):
                if layer.groups != 1 or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
                    raise ValueError(f"unsupported conv layer {layer}")
                spec.update(stride=list(layer.stride), padding=list(layer.padding), dilation=list(layer.dilation))
            weights += [layer.weight.detach().numpy(), layer.bias.detach().numpy()]
        elif isinstance(layer, nn.ReLU):
            spec = {"op": "relu"}
        elif isinstance(layer, nn.Flatten):
            spec = {"op": "flatten"}
        else:
            raise ValueError(f"no JAX translation for {type(layer).__name__}")
        specs.append(spec)
    return specs, weights


@dataclass
class NTResult:
    timing: Timing | None
    kernel: np.ndarray | None
    forward_rel_err: float | None
    error: str | None


def run_nt(module: nn.Sequential, x: torch.Tensor, implementation: int, block: int | None, max_pairs: int | None, quick: bool) -> NTResult:
    """One neural-tangents measurement in a fresh subprocess; failures become ``error``."""
    specs, weights = layer_specs(module)
    with torch.no_grad():
        y = module(x).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        arrays = {f"w{i}": w for i, w in enumerate(weights)}
        np.savez(inp, x=x.numpy(), y=y, **arrays)
        meta = {"specs": specs, "n_weights": len(weights), "implementation": implementation,
                "block": block, "max_pairs": max_pairs, "quick": quick, "input": str(inp), "output": str(out)}
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--nt-worker", json.dumps(meta)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return NTResult(None, None, None, f"failed: timed out after {WORKER_TIMEOUT_S} s")
        if proc.returncode != 0:
            return NTResult(None, None, None, "failed: " + _failure_reason(proc))
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        if info.get("error"):
            return NTResult(None, None, info.get("forward_rel_err"), "failed: " + info["error"])
        kernel = np.load(out)["kernel"]
    timing = Timing(info["seconds"], info["runs"], info["compile_s"], info.get("extrapolated"))
    return NTResult(timing, kernel, info["forward_rel_err"], None)


def _failure_reason(proc: subprocess.CompletedProcess) -> str:
    rc = proc.returncode
    what = f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit code {rc}"
    lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
    keys = ("RESOURCE_EXHAUSTED", "Error", "error", "Out of memory", "Allocator")
    hint = next((ln for ln in reversed(lines) if any(k in ln for k in keys)), lines[-1] if lines else "")
    return f"{what}: {hint[:300]}".replace("|", "/")


def nt_worker(meta: dict[str, Any]) -> None:
    """Runs in the subprocess: JAX forward, check against torch, compile, time, save the kernel."""
    import jax
    import jax.numpy as jnp

    from genlab.models._stax import import_neural_tangents

    nt = import_neural_tangents()  # without its TensorFlow-only `experimental` package

    data = np.load(meta["input"])
    flat = [jnp.asarray(data[f"w{i}"]) for i in range(meta["n_weights"])]
    params = [{"w": flat[i], "b": flat[i + 1]} for i in range(0, len(flat), 2)]
    specs = meta["specs"]

    def forward(p: list[dict[str, Any]], x: Any) -> Any:
        it = iter(p)
        for spec in specs:
            if spec["op"] == "linear":
                layer = next(it)
                x = x @ layer["w"].T + layer["b"]
            elif spec["op"] == "conv2d":
                layer = next(it)
                x = jax.lax.conv_general_dilated(
                    x, layer["w"], window_strides=tuple(spec["stride"]),
                    padding=[(q, q) for q in spec["padding"]], rhs_dilation=tuple(spec["dilation"]),
                    dimension_numbers=("NCHW", "OIHW", "NCHW"),
                ) + layer["b"][None, :, None, None]
            elif spec["op"] == "relu":
                x = jax.nn.relu(x)
            else:  # flatten
                x = x.reshape(x.shape[0], -1)
        return x

    x = jnp.asarray(data["x"])
    y_torch = data["y"]
    y_jax = np.asarray(jax.jit(forward)(params, x))
    fwd_err = float(np.linalg.norm(y_jax - y_torch) / np.linalg.norm(y_torch))
    report: dict[str, Any] = {"forward_rel_err": fwd_err}
    if not fwd_err <= FORWARD_RTOL:
        report["error"] = f"JAX forward differs from torch: relative error {fwd_err:.2e} > {FORWARD_RTOL:g}"
        print(json.dumps(report))
        return
    num_outputs = y_torch.shape[1]
    kernel_fn = jax.jit(nt.empirical_ntk_fn(forward, trace_axes=(-1,), vmap_axes=0, implementation=meta["implementation"]))
    n, block, quick = x.shape[0], meta["block"], meta["quick"]

    if block is None:
        t0 = time.perf_counter()
        compiled = kernel_fn.lower(x, None, params).compile()
        compile_s = time.perf_counter() - t0
        timing, kernel = measure(lambda: np.asarray(compiled(x, None, params)) * num_outputs, quick)
    else:
        if n % block:
            raise ValueError(f"n = {n} must be a multiple of the NT block {block}")
        starts = range(0, n, block)
        pairs = [(i, j) for i in starts for j in starts if j >= i]
        timed = pairs[: meta["max_pairs"]] if meta["max_pairs"] else pairs
        xb = x[:block]
        t0 = time.perf_counter()
        compiled = kernel_fn.lower(xb, xb, params).compile()
        compile_s = time.perf_counter() - t0

        def blocked() -> np.ndarray:
            out = np.full((n, n), np.nan, dtype=np.float32)
            for i, j in timed:
                blk = np.asarray(compiled(x[i : i + block], x[j : j + block], params)) * num_outputs
                out[i : i + block, j : j + block] = blk
                out[j : j + block, i : i + block] = blk.T
            return out

        timing, kernel = measure(blocked, quick, warmup=lambda: compiled(xb, xb, params).block_until_ready())
        if len(timed) < len(pairs):
            timing.extrapolated = f"{len(timed)} of {len(pairs)} block pairs ({block}x{block}) timed, x{len(pairs) / len(timed):.2f}"
            timing.seconds *= len(pairs) / len(timed)
        elif block < n:
            timing.extrapolated = f"{len(pairs)} block pairs ({block}x{block}), upper triangle"
    np.savez(meta["output"], kernel=kernel)
    report.update(seconds=timing.seconds, runs=timing.runs, compile_s=compile_s, extrapolated=timing.extrapolated)
    print(json.dumps(report))


# ----------------------------------------------------------------------------------------------
# The benchmark
# ----------------------------------------------------------------------------------------------


@dataclass
class Row:
    method: str
    timing: Timing | None
    kernel: np.ndarray | None
    note: str = ""


@dataclass
class CaseResult:
    case: Case
    num_outputs: int
    num_params: int
    rows: list[Row]
    peak: dict[int, float]  # torch.mm GFLOP/s measured just before this case's timings
    other_cores: float  # average number of cores used by other processes during the case


def run_case(case: Case, quick: bool, log: Callable[[str], None]) -> CaseResult:
    from genlab.kernels import empirical_ntk

    module = build_module(case.kind)
    x = make_inputs(case.kind, case.n)
    with torch.no_grad():
        num_outputs = int(module(x[:1]).shape[1])
    num_params = sum(p.numel() for p in module.parameters())
    snapshot = cpu_snapshot()
    log(f"  {case.name}: matmul peak ...")
    peak = matmul_peak(quick)
    rows = []
    for label, method in (("genlab (auto)", "auto"), ("torch.func JC", "jacobian")):
        log(f"  {case.name}: {label} ...")
        timing, kernel = measure(lambda m=method: empirical_ntk(module, x, method=m), quick)
        rows.append(Row(label, timing, kernel))
        log(f"    {timing.seconds:.3f} s ({timing.runs})")
    for impl, label in NT_IMPLEMENTATIONS.items():
        block, max_pairs = case.nt_block.get(impl), case.nt_max_pairs.get(impl)
        log(f"  {case.name}: {label} (block {block}, timed pairs {max_pairs}) ...")
        res = run_nt(module, x, impl, block, max_pairs, quick)
        note = res.error or f"JAX forward rel. err {res.forward_rel_err:.1e}"
        if res.timing and res.timing.extrapolated:
            note += "; " + res.timing.extrapolated
        rows.append(Row(label, res.timing, res.kernel, note))
        log(f"    {res.timing.seconds:.3f} s ({res.timing.runs})" if res.timing else f"    {res.error}")
    return CaseResult(case, num_outputs, num_params, rows, peak, other_cpu_use(snapshot))


def _fmt_s(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def case_table(res: CaseResult) -> list[str]:
    genlab = res.rows[0]
    lines = [
        f"### {res.case.name}  (K = {res.num_outputs} outputs, p = {res.num_params:,} parameters; "
        f"other processes used {res.other_cores:.2f} cores on average meanwhile)",
        "",
        "| method | time | runs | compile | time / genlab | rel. Frobenius err of genlab vs this | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in res.rows:
        if row.timing is None or row.kernel is None:
            lines.append(f"| {row.method} | – | – | – | – | – | {row.note} |")
            continue
        t = row.timing
        ratio = "1 (reference)" if row is genlab else f"{t.seconds / genlab.timing.seconds:.1f}×"
        err = "–" if row is genlab else f"{rel_frobenius(genlab.kernel, row.kernel):.2e}"
        comp = "–" if t.compile_s is None else _fmt_s(t.compile_s)
        lines.append(f"| {row.method} | {_fmt_s(t.seconds)} | {t.runs} | {comp} | {ratio} | {err} | {row.note} |")
    return lines + [""]


def report(results: list[CaseResult], quick: bool, started: float) -> str:
    versions = {pkg: _version(pkg) for pkg in ("torch", "jax", "jaxlib", "neural-tangents", "numpy")}
    out = [
        "# Empirical NTK benchmark" + (" (--quick)" if quick else ""),
        "",
        f"- date: {_dt.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {_cpu_model()}, {os.cpu_count()} cores, "
        f"{_mem_gib():.0f} GiB RAM; python {platform.python_version()}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- torch.get_num_threads() = {torch.get_num_threads()}; "
        f"OMP_WAIT_POLICY = {os.environ.get('OMP_WAIT_POLICY')} (this script's default: PASSIVE); "
        "XLA uses its default CPU threading",
        "- float32 torch.mm peak (best of several, measured just before each case): "
        + "; ".join(f"{r.case.name}: " + ", ".join(f"N={n} {g:.0f}" for n, g in r.peak.items()) for r in results)
        + " GFLOP/s",
        "- timing: time.perf_counter, median of the runs after one warm-up (see 'runs'); "
        "NT compiled ahead of time (compile column), kernels multiplied by K (NT returns the mean over outputs)",
        "",
        "## Results",
        "",
    ]
    busiest = max(r.other_cores for r in results)
    if busiest > BUSY_CORES:
        out += [f"**Warning: other processes used up to {busiest:.2f} of the {os.cpu_count()} cores during a case. "
                "torch's 2 OpenMP threads degrade badly when a core is taken: genlab on the "
                "MLP n=256 took ~7 ms on a quiet machine and, with one core busy elsewhere, ~420 ms under "
                "OMP_WAIT_POLICY=ACTIVE/unset but ~16 ms under PASSIVE. Compare only runs taken under the "
                "same conditions.**", ""]
    for res in results:
        out += case_table(res)
    out += ["## Targets (genlab speed-up over the torch.func Jacobian contraction)", "",
            "| case | target | measured | verdict |", "|---|---|---|---|"]
    by_name = {r.case.name: r for r in results}
    for name, target in TARGETS.items():
        res = by_name.get(name)
        if res is None:
            out.append(f"| {name} | ≥ {target:g}× | not run | – |")
            continue
        ratio = res.rows[1].timing.seconds / res.rows[0].timing.seconds
        out.append(f"| {name} | ≥ {target:g}× | {ratio:.1f}× | {'PASS' if ratio >= target else 'MISS'} |")
    out += ["", "## Jacobian-contraction fallback throughput", "",
            "Flops = 2·n²·K·p of the full contraction J Jᵀ (nominal: genlab's symmetric path computes only "
            "the upper block triangle); the time is the whole `method=\"jacobian\"` call, Jacobian build "
            "INCLUDED. Peak = the best torch.mm rate measured just before the case; 'contraction at peak' = "
            "flops / peak, the time the contraction alone would take at that rate, so the rest is the "
            "Jacobian build and overhead.", "",
            "| case | GFLOP (nominal) | time | GFLOP/s | peak GFLOP/s | % of peak | contraction at peak |", "|---|---|---|---|---|---|---|"]
    for res in results:
        flops = 2 * res.case.n**2 * res.num_outputs * res.num_params / 1e9
        t = res.rows[1].timing.seconds
        best_peak = max(res.peak.values())
        out.append(f"| {res.case.name} | {flops:.0f} | {_fmt_s(t)} | {flops / t:.0f} | "
                   f"{best_peak:.0f} | {100 * flops / t / best_peak:.0f}% | {_fmt_s(flops / best_peak)} |")
    out += ["", f"Total benchmark wall time: {time.perf_counter() - started:.0f} s.", ""]
    return "\n".join(out)


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="MLP n=256 only, warm-up + 1 run (smoke test)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"markdown report (default {DEFAULT_OUT})")
    parser.add_argument("--nt-worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.nt_worker:
        nt_worker(json.loads(args.nt_worker))
        return
    started = time.perf_counter()
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    results = [run_case(case, args.quick, log) for case in cases(args.quick)]
    text = report(results, args.quick, started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
