"""Landscape measurements (mirrors genlab.theory.landscape).

The curvature is that of the training objective L = loss_scale * mean per-sample loss on the
full training set (genlab.empirical._curvature). Quantities:

- ``sharpness``: the top Hessian eigenvalue at the end of training; its curve along training
  comes from :func:`sharpness_hook` (every measured step);
- ``sharpness_max``: its maximum along training;
- ``sharpness_late``: its mean over the last ``LATE_FRACTION`` of the steps (the edge-of-stability
  plateau of Cohen et al. 2021, compared with the threshold 2 (1 + momentum)/lr - weight_decay,
  2/lr for plain GD: :func:`genlab._stability.eos_threshold`, the formula the theory side uses);
- ``steps_to_eos``: the first measured step at which the sharpness is within ``EOS_BAND`` (relative)
  of that threshold (from below after progressive sharpening, or from above after a catapult,
  Lewkowycz et al. 2020, when the initial sharpness already exceeds it); None if never (and when
  the weight decay alone leaves no positive threshold);
- ``path_length``, ``distance_from_init``, ``trajectory_pca_variance``: the optimizer's path
  through parameter space from snapshots taken at measured steps (:func:`trajectory_hook`):
  sum_k ||theta_{k+1} - theta_k||, ||theta_end - theta_0||, and the fraction of the trajectory's
  variance in its top two principal directions (Li et al. 2018, Sec. 6; Lorch 2016);
- ``hessian_trace``: Hutchinson's estimate of tr H at the end (Hutchinson 1990), and
  ``sharpness_trace_ratio`` = lambda_max / tr H (how dominated the curvature is by one direction);
- ``nonuniformity``: the SGD non-uniformity s = sqrt(lambda_max((1/n) sum_i H_i^2 - H^2)) at the
  end (Wu, Ma & E 2018), and ``sgd_stability`` = (1 - eta a)^2 + eta^2 (n - B) / (B (n - 1)) s^2,
  their linear-stability factor of the minimum reached (a = sharpness at the end, B the batch
  size, n the training set): <= 1 for a minimum SGD can stay in;
- ``spectral_density``: the Hessian eigenvalue density at the end by stochastic Lanczos
  quadrature (the curve), and as its value the fraction of eigenvalues above
  ``OUTLIER_FRACTION`` of the largest (the outliers of Sagun et al. 2017 / Papyan 2019 beside
  the bulk near zero);
- ``interpolation_barrier``: the loss along the straight line from init to the trained
  parameters (the curve, Goodfellow, Vinyals & Saxe 2015) and its barrier height above the
  chord (the value);
- ``loss_plane``: the loss on a plane of two filter-normalised random directions through the
  trained parameters (Li et al. 2018), kept as arrays for the figure; its value is the mean
  loss increase over the plane, span [-1, 1]^2, above the centre.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from genlab._stability import eos_threshold
from genlab.empirical._context import EmpiricalContext
from genlab.empirical._curvature import hessian_trace as _hutchinson
from genlab.empirical._curvature import density_from_nodes as _density
from genlab.empirical._curvature import nonuniformity as _nonuniformity_of
from genlab.empirical._curvature import slq_nodes as _slq_nodes
from genlab.empirical._curvature import top_eigenvalues
from genlab.empirical._slices import barrier, filter_normalized_direction, interpolate, plane
from genlab.settings import TrainSettings
from genlab.empirical._train import Hook
from genlab.empirical._trajectory import TrajectoryStats, trajectory_statistics
from genlab.quantities import Curve, Measurement

#: Relative precision of each sharpness estimate (ARPACK residual tolerance).
SHARPNESS_TOL = 1e-3
#: The late phase of training over which the plateau is averaged.
LATE_FRACTION = 0.2
#: Relative distance to the stability threshold within which the sharpness counts as at the edge
#: of stability.
EOS_BAND = 0.1
#: Rademacher vectors of the final trace estimate.
TRACE_SAMPLES = 64
#: Eigenvalues above this fraction of the largest count as outliers of the spectral density.
OUTLIER_FRACTION = 0.1
#: SLQ starts and Lanczos steps of the spectral density (P >> steps: the extreme Ritz values
#: converge, the bulk is resolved to the broadening).
DENSITY_VECTORS, DENSITY_STEPS = 4, 60
#: Points of the init-to-end line and per axis of the 2D plane.
LINE_POINTS, PLANE_POINTS = 25, 21
#: Floats of the trajectory a cell keeps on disk for views across cells (32 MiB of float64);
#: beyond it every k-th snapshot is kept (the first and last always).
STORED_SNAPSHOT_BUDGET = 2**22
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
    """The top-2 PCA share; the snapshots themselves are kept as arrays ("trajectory",
    "trajectory_step"), thinned to ``STORED_SNAPSHOT_BUDGET`` floats, so that several cells'
    trajectories can be projected onto one plane (genlab.study.landscape_views)."""
    stats = _trajectory(ctx)
    value = None if stats is None else float(np.sum(stats.explained_variance_ratio[:2]))
    arrays = None
    if stats is not None:
        snapshots = np.asarray(ctx.run.measurements["trajectory"], dtype=np.float64)
        steps = np.asarray(ctx.run.measurements["trajectory_step"], dtype=np.float64)
        every = max(1, math.ceil(snapshots.size / STORED_SNAPSHOT_BUDGET))
        keep = np.unique(np.r_[np.arange(0, len(steps), every), len(steps) - 1])
        arrays = {"trajectory": snapshots[keep], "trajectory_step": steps[keep]}
    return Measurement("trajectory_pca_variance", value, arrays=arrays)


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
    s = ctx.settings
    threshold = eos_threshold(s.effective_lr(len(ctx.x_train)), s.momentum, s.weight_decay)
    reached = np.nonzero(np.abs(curve.y - threshold) <= EOS_BAND * threshold)[0]
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


def _sharpness_end(ctx: EmpiricalContext) -> float:
    """The sharpness of the trained network: the sharpness hook's value at the final step when it
    ran (the same computation on the same parameters), else computed once here."""
    curve = _curve(ctx)
    if curve is not None and curve.x[-1] == ctx.run.final_step:
        return float(curve.y[-1])
    return ctx.cached(
        "sharpness_end",
        lambda: float(top_eigenvalues(ctx.module, ctx.x_train, ctx.y_train, k=1, tol=SHARPNESS_TOL,
                                      loss=ctx.settings.loss, seed=ctx.settings.seed).values[0]),
    )


def _nonuniformity(ctx: EmpiricalContext) -> float:
    return ctx.cached(
        "nonuniformity",
        lambda: _nonuniformity_of(ctx.module, ctx.x_train, ctx.y_train, loss=ctx.settings.loss, tol=SHARPNESS_TOL,
                                  seed=ctx.settings.seed)[0],
    )


def nonuniformity(ctx: EmpiricalContext) -> Measurement:
    return Measurement("nonuniformity", None if ctx.run.diverged else _nonuniformity(ctx))


def sgd_stability(ctx: EmpiricalContext) -> Measurement:
    """(1 - eta a)^2 + eta^2 (n - B) / (B (n - 1)) s^2 at the end (Wu, Ma & E 2018, Thm. 1 with
    sampling without replacement), with the final learning rate eta of a constant schedule."""
    if ctx.run.diverged:
        return Measurement("sgd_stability", None)
    n = len(ctx.x_train)
    batch = ctx.settings.batch(n)
    eta = ctx.settings.effective_lr(n)
    a = _sharpness_end(ctx)
    noise = 0.0 if batch == n else eta**2 * (n - batch) / (batch * (n - 1)) * _nonuniformity(ctx) ** 2
    return Measurement("sgd_stability", (1.0 - eta * a) ** 2 + noise)


def spectral_density(ctx: EmpiricalContext) -> Measurement:
    if ctx.run.diverged:
        return Measurement("spectral_density", None)
    nodes, weights = _slq_nodes(ctx.module, ctx.x_train, ctx.y_train, vectors=DENSITY_VECTORS, steps=DENSITY_STEPS,
                                seed=ctx.settings.seed, loss=ctx.settings.loss)
    grid, density = _density(nodes, weights)
    outliers = float(np.sum(weights[nodes > OUTLIER_FRACTION * nodes.max()])) if nodes.max() > 0 else 0.0
    return Measurement("spectral_density", outliers, Curve(grid, density, x_label="eigenvalue"))


def _parameters(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}


def interpolation_barrier(ctx: EmpiricalContext) -> Measurement:
    if ctx.run.diverged:
        return Measurement("interpolation_barrier", None)
    t, losses = interpolate(ctx.module, _parameters(ctx.module0), _parameters(ctx.module), ctx.x_train, ctx.y_train,
                            loss=ctx.settings.loss, points=LINE_POINTS)
    return Measurement("interpolation_barrier", barrier(t, losses), Curve(t, losses, x_label="t"))


def loss_plane(ctx: EmpiricalContext) -> Measurement:
    if ctx.run.diverged:
        return Measurement("loss_plane", None)
    seed = ctx.settings.seed
    d1 = filter_normalized_direction(ctx.module, seed=seed)
    d2 = filter_normalized_direction(ctx.module, seed=seed + 1, orthogonal_to=d1)
    a, b, losses = plane(ctx.module, _parameters(ctx.module), d1, d2, ctx.x_train, ctx.y_train,
                         loss=ctx.settings.loss, points=PLANE_POINTS)
    centre = losses[PLANE_POINTS // 2, PLANE_POINTS // 2]
    return Measurement("loss_plane", float(np.mean(losses) - centre),
                       arrays={"loss_plane": losses, "loss_plane_a": a, "loss_plane_b": b})
