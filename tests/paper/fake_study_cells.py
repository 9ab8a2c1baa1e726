"""A closed-form cell (no torch) for the paper recipes of the implicit-bias, generalization and
landscape studies, so that their tests can check every drawn number against its formula.

Per quantity (seed factor f = 1 + 0.1 (train.seed + task.seed); n = task.n_train, d = task.d, lr = train.lr,
B = train.batch_size):

- diag: ``solution_l1`` / ``solution_l2``: theory 1 + w_std, empirical (1 + w_std) f.
- learning curves: ``learning_curve_mse``: depth 1 theory 4/n, empirical 4/n f; depth 0 theory
  1 + d/|n - d|, empirical the same times f; ``test_mse`` 4.4/n f.
- nn_vs_kernel: ``test_mse`` 1/n (theory 2/n), ``init_kernel_test_mse`` 2.5/n (theory 2/n),
  ``nngp_test_mse`` 3.5/n (theory 3/n), ``after_kernel_test_mse`` 1.5/n,
  ``first_layer_alignment`` 0.5 (theory 1/d).
- sgd stability: ``sharpness`` 1.5/lr (theory 2/lr), ``nonuniformity`` 0.5 sqrt(B)/lr,
  ``sgd_stability`` (1 - lr a)^2 + lr^2 (n-B)/(B(n-1)) s^2 of those (theory 1).
- max margin: ``margin_cosine`` curve 1 - 0.5/log(lr t)^2 at t = 10^(1 + k/10), k = 0..20.
Anything else: theory 1, empirical 1.
"""

from __future__ import annotations

import math
from typing import Any

from genlab.study import CellOutput, QuantityRow

#: Steps of the fake margin curves: 10 to 1000, ten per decade.
MARGIN_LOG10_STEPS = [1 + k / 10 for k in range(21)]


def margin_cosine_curve(lr: float) -> list[float]:
    return [1 - 0.5 / math.log(lr * 10**s) ** 2 for s in MARGIN_LOG10_STEPS]


def study_cell(config: dict[str, Any]) -> CellOutput:
    task, model, train = config["task"], config["model"], config["train"]
    f = 1 + 0.1 * (train["seed"] + task.get("seed", 0))
    n, d, lr = task["n_train"], task.get("d"), train["lr"]
    rows, curves = [], {}
    for q in config["quantities"]:
        if q in ("solution_l1", "solution_l2"):
            rows.append(QuantityRow(q, 1 + model["w_std"], (1 + model["w_std"]) * f))
        elif q == "learning_curve_mse":
            value = 4 / n if model["depth"] == 1 else 1 + d / abs(n - d)
            rows.append(QuantityRow(q, value, value * f))
        elif q == "test_mse" and "learning_curve_mse" in config["quantities"]:
            rows.append(QuantityRow(q, None, 4.4 / n * f))
        elif q == "test_mse":
            rows.append(QuantityRow(q, 2 / n, 1 / n * f))
        elif q == "init_kernel_test_mse":
            rows.append(QuantityRow(q, 2 / n, 2.5 / n * f))
        elif q == "nngp_test_mse":
            rows.append(QuantityRow(q, 3 / n, 3.5 / n * f))
        elif q == "after_kernel_test_mse":
            rows.append(QuantityRow(q, None, 1.5 / n * f))
        elif q == "first_layer_alignment":
            rows.append(QuantityRow(q, 1 / d, 0.5 * f))
        elif q in ("sharpness", "nonuniformity", "sgd_stability"):
            batch = train["batch_size"]
            a, s = 1.5 / lr, 0.5 * math.sqrt(batch) / lr
            value = {"sharpness": a, "nonuniformity": s,
                     "sgd_stability": (1 - lr * a) ** 2 + lr**2 * (n - batch) / (batch * (n - 1)) * s**2}[q]
            theory = {"sharpness": 2 / lr, "nonuniformity": None, "sgd_stability": 1.0}[q]
            rows.append(QuantityRow(q, theory, value))
        elif q == "margin_cosine":
            cos = margin_cosine_curve(lr)
            rows.append(QuantityRow(q, 1.0, cos[-1]))
            curves[q] = {"empirical_log10_step": MARGIN_LOG10_STEPS, "empirical": cos}
        else:
            rows.append(QuantityRow(q, 1.0, 1.0))
    return CellOutput(rows=rows, curves=curves)
