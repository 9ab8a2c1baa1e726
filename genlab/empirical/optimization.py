"""Optimization measurements: how fast training gets somewhere (no theory side).

- ``steps_to_target_loss``: the first measured step at which the full training loss is at or
  below ``TARGET_FRACTION`` times its value at initialisation ("steps to result", the measure
  of Shallue et al. 2019, "Measuring the effects of data parallelism on neural network
  training", with the target relative to the initial loss so that one constant serves every
  loss). Its resolution is the measurement interval (``train.measure_every``); None if the
  target is never reached or training diverged. One step is one parameter update: for
  Entropy-SGD that is L gradient evaluations, for SAM two.
"""

from __future__ import annotations

import numpy as np

from genlab.empirical._context import EmpiricalContext
from genlab.quantities import Curve, Measurement

#: The target training loss, as a fraction of the training loss at initialisation.
TARGET_FRACTION = 0.05


def first_step_below(steps: np.ndarray, losses: np.ndarray, target: float) -> int | None:
    """The first of ``steps`` whose loss is finite and <= ``target``; None if there is none."""
    hits = np.flatnonzero(np.isfinite(losses) & (losses <= target))
    return int(steps[hits[0]]) if hits.size else None


def steps_to_target_loss(ctx: EmpiricalContext) -> Measurement:
    run = ctx.run
    if run.diverged or len(run.train_loss) == 0:
        return Measurement("steps_to_target_loss", None)
    target = TARGET_FRACTION * float(run.train_loss[0])
    step = first_step_below(run.steps, run.train_loss, target)
    curve = Curve(run.steps, run.train_loss / run.train_loss[0], "step")
    return Measurement("steps_to_target_loss", None if step is None else float(step), curve)
