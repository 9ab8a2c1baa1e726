"""A cell function with closed-form values (no torch), so that the paper tests can check the
numbers a recipe draws against the formulas they came from.

- ``ntk_drift`` = 0.5 / (alpha sqrt(width)) (1 + 0.1 seed): collapses exactly in alpha sqrt(width).
- ``test_mse``: theory 1, empirical 1 + 2 / width (1 + 0.1 seed): relative gap ~ width^-1.
- ``weight_change`` = 3 / width (1 + 0.1 seed) (slope -1); ``linearization_distance`` =
  width^-1/2 (1 + 0.1 seed) (slope -1/2).
- ``sharpness``: a curve min(2/lr, 1 + step / 10) against the theory line 2/lr; the scalars
  ``sharpness_late`` / ``sharpness_max`` are 1.01 * 2/lr against 2/lr.
Every call is counted in ``CALLS`` (workers=1 runs cells in this process).
"""

from __future__ import annotations

import math
from typing import Any

from genlab.study import CellOutput, QuantityRow

CALLS: list[str] = []


def paper_cell(config: dict[str, Any]) -> CellOutput:
    CALLS.append(config["task"]["name"])
    width = config["model"]["width"]
    alpha = config["model"]["alpha"] or 1.0
    seed = config["train"]["seed"]
    lr = config["train"]["lr"]
    factor = 1 + 0.1 * seed
    rows, curves = [], {}
    for q in config["quantities"]:
        if q == "ntk_drift":
            rows.append(QuantityRow(q, 0.0, 0.5 / (alpha * math.sqrt(width)) * factor))
        elif q == "test_mse":
            rows.append(QuantityRow(q, 1.0, 1.0 + 2.0 / width * factor))
        elif q == "weight_change":
            rows.append(QuantityRow(q, 0.0, 3.0 / width * factor))
        elif q == "linearization_distance":
            rows.append(QuantityRow(q, 0.0, width**-0.5 * factor))
        elif q in ("sharpness", "sharpness_late", "sharpness_max"):
            rows.append(QuantityRow(q, 2 / lr, 1.01 * 2 / lr))
            if q == "sharpness":
                steps = list(range(0, 101, 10))
                curves[q] = {"empirical_step": steps, "empirical": [min(2 / lr, 1 + s / 10) for s in steps],
                             "theory_step": steps, "theory": [2 / lr] * len(steps)}
        elif q == "steps_to_eos":
            rows.append(QuantityRow(q, None, 40.0))
        else:
            rows.append(QuantityRow(q, 1.0, 1.0))
    return CellOutput(rows=rows, curves=curves)
