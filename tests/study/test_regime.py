"""The regime verdict against the spread of one seed's test MSE around the theory's expectation.

The reference for the uncentred rules is the exact infinite-width linearized model: f0 drawn
from the analytic NNGP with numpy, the outputs after T GD steps computed from it (gd_dynamics
with an explicit f0: exact for that model), and the measured-versus-predicted test MSE of every
draw judged as one cell. A network in that model is in the kernel regime by construction, so the
fraction of draws called "kernel" is the verdict's true-positive rate.
"""

from __future__ import annotations

import numpy as np
import pytest

from genlab.settings import TrainSettings
from genlab.kernels import gd_dynamics
from genlab.models import ArchSpec
from genlab.study._cell import run_cell
from genlab.study._output import CellOutput, QuantityRow
from genlab.study._regime import SPREAD_Z, regime_verdict
from genlab.tasks import make_task
from genlab.theory import TheoryContext
from genlab.theory import kernel_regime

# erf, depth 1, n = 32, as in the audit of issue 12: a single-index target in d = 16 with
# w_std = 2, where the initial function is large compared with the target and 32 test points
# average little of it out, so one draw's test MSE spreads by ~30 % of its mean.
TASK = {"name": "single_index", "seed": 0, "n_train": 32, "n_test": 32, "d": 16}
MODEL = {"kind": "fc", "depth": 1, "activation": "erf", "w_std": 2.0, "b_std": 0.1}
STEPS = 40


def _cell(mse: float, mse_theory: float, drift: float, spread: float | None = None) -> CellOutput:
    return CellOutput([QuantityRow("ntk_drift", 0.0, drift), QuantityRow("test_mse", mse_theory, mse, theory_spread=spread)])


@pytest.mark.parametrize(
    ("mse", "drift", "spread", "verdict"),
    [
        (1.05, 0.01, None, "kernel"),  # within 10 %: unchanged for centred networks
        (1.2, 0.01, None, "intermediate"),
        (1.2, 0.01, 0.15, "kernel"),  # |0.2| <= 2 * 0.15
        (1.35, 0.01, 0.15, "intermediate"),  # |0.35| > 0.3
        (0.85, 0.5, None, "feature learning"),  # beats the kernel by more than 10 %
        (0.85, 0.5, 0.1, "intermediate"),  # ... but not by more than two spreads
        (0.75, 0.5, 0.1, "feature learning"),
        (1.05, 0.01, 0.01, "kernel"),  # a spread below 5 % leaves the relative tolerance
    ],
)
def test_tolerance_is_the_larger_of_relative_and_spread(mse: float, drift: float, spread: float | None, verdict: str) -> None:
    assert SPREAD_Z == 2.0
    assert regime_verdict(_cell(mse, 1.0, drift, spread)) == verdict


def _theory_context(settings: TrainSettings) -> TheoryContext:
    task = make_task(TASK["name"], seed=TASK["seed"], **{k: v for k, v in TASK.items() if k not in ("name", "seed")})
    return TheoryContext(spec=ArchSpec(**MODEL), width=1, centered=False, settings=settings, x_train=task.x_train,
                         y_train=task.y_train, x_test=task.x_test, y_test=task.y_test, kind="regression",
                         steps=np.asarray(settings.measured_steps))


def test_exact_kernel_regime_draws_are_called_kernel() -> None:
    """2000 draws of the exact linearized model. The 10 % rule alone calls 28 % of them "kernel"
    (asserted < 40 %; binomial standard error 1 %): the per-draw spread is ~30 % of the mean.
    With the predicted spread (z = 2) 95.5 % are (asserted >= 90 %, the target of issue 12), and
    with the drift above the threshold at most 2 % are called "feature learning" (measured
    0.25 %; the 10 % rule alone: 40 %): the right-skewed quadratic form has a thin lower tail."""
    settings = TrainSettings(optimizer="gd", lr=1.0, steps=STEPS)
    ctx = _theory_context(settings)
    prediction = kernel_regime.test_mse(ctx)
    assert prediction.value is not None and prediction.spread is not None
    assert 0.2 < prediction.spread / prediction.value < 0.4

    n, draws = len(ctx.x_train), 2000
    joint = np.block([[ctx.kernel("nngp", "train"), ctx.kernel("nngp", "test_train").T],
                      [ctx.kernel("nngp", "test_train"), ctx.kernel("nngp", "test_test")]])
    values, vectors = np.linalg.eigh(joint)
    f0 = (vectors * np.sqrt(np.clip(values, 0, None))) @ np.random.default_rng(0).normal(size=(len(joint), draws))
    ntk, ntk_test = ctx.kernel("ntk", "train"), ctx.kernel("ntk", "test_train")
    deviation = gd_dynamics(ntk, np.zeros((n, draws)), ntk_test, lr=1.0, steps=STEPS, f0_train=f0[:n], f0_test=f0[n:])
    mean = gd_dynamics(ntk, ctx.y_train, ntk_test, lr=1.0, steps=STEPS)
    outputs = mean.f_test[-1] + deviation.f_test[-1]  # (m, draws)
    mses = np.mean((outputs - ctx.y_test) ** 2, axis=0)
    assert np.mean(mses) == pytest.approx(prediction.value, abs=4 * np.std(mses) / np.sqrt(draws))

    def fraction(verdict: str, drift: float, spread: float | None) -> float:
        return float(np.mean([regime_verdict(_cell(v, prediction.value, drift, spread)) == verdict for v in mses]))

    assert fraction("kernel", 0.0, None) < 0.4
    assert fraction("kernel", 0.0, prediction.spread) >= 0.9
    assert fraction("feature learning", 1.0, prediction.spread) <= 0.02


def test_wide_uncentred_networks_are_called_kernel_seed_after_seed() -> None:
    """12 seeds of a width-4096 uncentred net trained by GD through the study cell: the spread
    reaches the row, and at least 9 of 12 get "kernel" (measured 11; in the exact model the
    rate is 95.5 %, and the width adds O(width^-1/2) finite-width deviations: 22 of 24 seeds at
    this width). The seeds' own spread of the test MSE is the predicted one: sample std / spread
    within [0.55, 1.6] (the 99 % chi-square interval for 11 degrees of freedom is [0.55, 1.45];
    the upper end widened for the finite-width part; measured 0.98). The 10 % rule alone:
    5 of 12."""
    verdicts, mses = [], []
    for seed in range(12):
        cell = {"task": TASK, "model": {**MODEL, "width": 4096}, "quantities": ["test_mse", "ntk_drift"],
                "train": {"optimizer": "gd", "lr": 1.0, "steps": STEPS, "seed": seed, "measure_every": STEPS}}
        output = run_cell(cell)
        verdicts.append(regime_verdict(output))
        row = {r.quantity: r for r in output.rows}["test_mse"]
        mses.append(row.empirical)
    assert row.theory_spread is not None and row.theory_spread > 0.2 * row.theory
    assert verdicts.count("kernel") >= 9, verdicts
    assert 0.55 <= np.std(mses, ddof=1) / row.theory_spread <= 1.6
