"""Landscape measurements (mirrors genlab.theory.landscape).

The curvature is that of the training objective L = loss_scale * mean per-sample loss on the
full training set (genlab.empirical._curvature). Quantities:

- ``sharpness``: the top Hessian eigenvalue at the end of training; its curve along training
  comes from :func:`sharpness_hook` (every measured step);
- ``sharpness_max``: its maximum along training;
- ``sharpness_late``: its mean over the last ``LATE_FRACTION`` of the steps (the edge-of-stability
  plateau of Cohen et al. 2021, compared with 2/lr);
- ``steps_to_eos``: the first measured step at which the sharpness is within ``EOS_BAND`` of 2/lr
  (from below after progressive sharpening, or from above after a catapult, Lewkowycz et al.
  2020, when the initial sharpness already exceeds 2/lr); None if never;
- ``path_length``, ``distance_from_init``, ``trajectory_pca_variance``: the optimizer's path
  through parameter space from snapshots taken at measured steps (:func:`trajectory_hook`):
  sum_k ||theta_{k+1} - theta_k||, ||theta_end - theta_0||, and the fraction of the trajectory's
  variance in its top two principal directions (Li et al. 2018, Sec. 6; Lorch 2016);
- ``hessian_trace``: Hutchinson's estimate of tr H at the end (Hutchinson 1990), and
  ``sharpness_trace_ratio`` = lambda_max / tr H (how dominated the curvature is by one direction).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from genlab.empirical._context import EmpiricalContext
from genlab.empirical._curvature import hessian_trace as _hutchinson
from genlab.empirical._curvature import top_eigenvalues
from genlab.empirical._settings import TrainSettings
from genlab.empirical._train import Hook
from genlab.empirical._trajectory import TrajectoryStats, trajectory_statistics
from genlab.quantities import Curve, Measurement

#: Relative precision of each sharpness estimate (ARPACK residual tolerance).
SHARPNESS_TOL = 1e-3
#: The late phase of training over which the plateau is averaged.
LATE_FRACTION = 0.2
#: Relative distance to 2/lr within which the sharpness counts as at the edge of stability.
EOS_BAND = 0.1
#: Rademacher vectors of the final trace estimate.
TRACE_SAMPLES = 64
#: Floats the parameter snapshots of one run may hold (2 GiB of float64); beyond it the
#: trajectory hook keeps every k-th measured step.
SNAPSHOT_BUDGET = 2**28


def _finite(module: nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in module.parameters())


def sharpness_hook(module: nn.Module, x_train: np.ndarray, y_train: np.ndarray, settings: TrainSettings) -> Hook:
    """Record the top eigenvalue of the full-batch Hessian at every measured step."""

    def hook(step: int, net: nn.Module) -> dict[str, float]:
        if not _finite(net):
            return {}
        top = top_eigenvalues(net, x_train, y_train, k=1, tol=SHARPNESS_TOL, loss=settings.loss, seed=settings.seed)
        return {"sharpness_step": float(step), "sharpness": float(top.values[0])}

    return hook


def trajectory_hook(module: nn.Module, x_train: np.ndarray, y_train: np.ndarray, settings: TrainSettings) -> Hook:
    """Record the flattened trained parameters (float64) at measured steps, every k-th one when
    all of them would exceed ``SNAPSHOT_BUDGET`` floats; the first and last steps are kept."""
    size = sum(p.numel() for p in module.parameters() if p.requires_grad)
    every = max(1, math.ceil(len(settings.measured_steps) * size / SNAPSHOT_BUDGET))
    calls = [0]

    def hook(step: int, net: nn.Module) -> dict[str, Any]:
        keep = calls[0] % every == 0 or step == settings.steps
        calls[0] += 1
        if not keep:
            return {}
        flat = torch.cat([p.detach().reshape(-1) for p in net.parameters() if p.requires_grad])
        return {"trajectory_step": float(step), "trajectory": flat.to(torch.float64).cpu().numpy()}

    return hook


def _trajectory(ctx: EmpiricalContext) -> TrajectoryStats | None:
    snapshots = ctx.run.measurements.get("trajectory")
    if snapshots is None or len(snapshots) < 2 or not np.all(np.isfinite(snapshots)):
        return None
    return ctx.cached("trajectory", lambda: trajectory_statistics(snapshots))


def path_length(ctx: EmpiricalContext) -> Measurement:
    stats = _trajectory(ctx)
    return Measurement("path_length", None if stats is None else stats.path_length)


def distance_from_init(ctx: EmpiricalContext) -> Measurement:
    stats = _trajectory(ctx)
    return Measurement("distance_from_init", None if stats is None else stats.distance)


def trajectory_pca_variance(ctx: EmpiricalContext) -> Measurement:
    stats = _trajectory(ctx)
    value = None if stats is None else float(np.sum(stats.explained_variance_ratio[:2]))
    return Measurement("trajectory_pca_variance", value)


def _curve(ctx: EmpiricalContext) -> Curve | None:
    steps = ctx.run.measurements.get("sharpness_step")
    return None if steps is None or len(steps) == 0 else Curve(steps, ctx.run.measurements["sharpness"])


def sharpness(ctx: EmpiricalContext) -> Measurement:
    curve = _curve(ctx)
    value = None if curve is None or ctx.run.diverged else float(curve.y[-1])
    return Measurement("sharpness", value, curve)


def sharpness_max(ctx: EmpiricalContext) -> Measurement:
    curve = _curve(ctx)
    return Measurement("sharpness_max", None if curve is None else float(np.max(curve.y)))


def sharpness_late(ctx: EmpiricalContext) -> Measurement:
    curve = _curve(ctx)
    if curve is None or ctx.run.diverged:
        return Measurement("sharpness_late", None)
    late = curve.y[curve.x >= (1 - LATE_FRACTION) * ctx.run.final_step]
    return Measurement("sharpness_late", float(np.mean(late)) if late.size else None)


def steps_to_eos(ctx: EmpiricalContext) -> Measurement:
    curve = _curve(ctx)
    if curve is None:
        return Measurement("steps_to_eos", None)
    reached = np.nonzero(np.abs(curve.y * ctx.settings.lr / 2.0 - 1.0) <= EOS_BAND)[0]
    return Measurement("steps_to_eos", float(curve.x[reached[0]]) if reached.size else None)


def _trace(ctx: EmpiricalContext) -> float:
    estimate, _ = ctx.cached(
        "hessian_trace",
        lambda: _hutchinson(ctx.module, ctx.x_train, ctx.y_train, samples=TRACE_SAMPLES, seed=ctx.settings.seed, loss=ctx.settings.loss),
    )
    return float(estimate)


def hessian_trace(ctx: EmpiricalContext) -> Measurement:
    return Measurement("hessian_trace", None if ctx.run.diverged else _trace(ctx))


def sharpness_trace_ratio(ctx: EmpiricalContext) -> Measurement:
    top = sharpness(ctx).value
    return Measurement("sharpness_trace_ratio", None if top is None else top / _trace(ctx))
