"""Generalization measurements (the theory side, bounds and learning curves, is issue 5's).

- ``generalization_gap``: test loss - train loss at the end of training, both the unscaled
  data loss of genlab.empirical._train (Jiang et al. 2020, "Fantastic generalization measures
  and where to find them", use the same gap as the target their measures are ranked against).
"""

from __future__ import annotations

from genlab.empirical._context import EmpiricalContext
from genlab.quantities import Measurement


def generalization_gap(ctx: EmpiricalContext) -> Measurement:
    if ctx.run.diverged or ctx.run.test_loss is None:
        return Measurement("generalization_gap", None)
    return Measurement("generalization_gap", float(ctx.run.test_loss[-1] - ctx.run.train_loss[-1]))
