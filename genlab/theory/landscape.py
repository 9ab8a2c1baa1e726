"""Landscape thresholds (mirrors genlab.empirical.landscape), carried as sympy closed forms.

- Edge of stability (Cohen, Kaur, Li, Kolter & Talwalkar 2021): gradient descent with learning
  rate eta, heavy-ball momentum beta and weight decay wd on a quadratic is stable iff the
  sharpness (top Hessian eigenvalue of the loss L, without the decay term) is below
  2 (1 + beta) / eta - wd (2/eta for plain GD; derivation in genlab._stability, whose
  :func:`~genlab._stability.eos_threshold` both sides use). On neural networks with the MSE,
  full-batch GD first sharpens progressively and then hovers at about that threshold. Predicted
  under full-batch GD: the sharpness during the late phase, its maximum and its final value are
  all the threshold (kind "value"). Under SGD (batch < n) the mean iterate follows GD, so a
  minimum SGD can stay in has a sharpness below the threshold (a stable second moment needs a
  stable mean): the same number is then an upper bound (kind "upper").
- Linear stability of SGD minima (Wu, Ma & E 2018, "How SGD selects the global minima in
  over-parameterized learning"): a minimum with sharpness a and non-uniformity
  s = sqrt(lambda_max((1/n) sum_i H_i^2 - H^2)) is linearly stable for SGD with learning rate eta
  and batch B (sampled without replacement from n) iff
      (1 - eta a)^2 + eta^2 (n - B) / (B (n - 1)) s^2 <= 1,
  so the sharpest minimum SGD can stay in is a_max = (1 + sqrt(1 - eta^2 (n-B) s^2 / (B (n-1)))) / eta
  (2/eta at full batch; no stable minimum when the square root is imaginary). The condition
  can hold for some a only if s <= s_max = sqrt(B (n - 1) / (n - B)) / eta (at a = 1/eta): the
  predicted bound on the non-uniformity of any minimum SGD reaches (infinite at full batch).
  Predicted for the measured stability factor ``sgd_stability``: at most 1. Both are upper
  bounds (kind "upper"): tables check them as satisfied or violated, never as a gap.

The expressions are sympy objects (``EXPRESSIONS``), evaluated through ``sympy.lambdify`` and
printed with :func:`latex` in tables and paper captions.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from genlab._stability import eos_threshold  # re-exported: the closed-form helpers' threshold
from genlab.quantities import Curve, Prediction
from genlab.theory._context import TheoryContext


@functools.lru_cache(maxsize=1)
def _expressions() -> dict[str, Any]:
    import sympy as sp

    eta, a, s, n, batch = sp.symbols("eta a s n B", positive=True)
    beta, wd = sp.Symbol("beta", nonnegative=True), sp.Symbol("lambda_wd", nonnegative=True)
    variance = eta**2 * (n - batch) / (batch * (n - 1)) * s**2
    heavy_ball = 2 * (1 + beta) / eta - wd
    return {
        "symbols": {"eta": eta, "a": a, "s": s, "n": n, "B": batch, "beta": beta, "wd": wd},
        "eos_threshold": heavy_ball.subs({beta: 0, wd: 0}),
        "eos_threshold_momentum": heavy_ball,
        "sgd_stability_condition": (1 - eta * a) ** 2 + variance,
        "sgd_max_sharpness": (1 + sp.sqrt(1 - variance)) / eta,
        "sgd_max_nonuniformity": sp.sqrt(batch * (n - 1) / (n - batch)) / eta,
    }


def expression(name: str) -> Any:
    """The sympy expression ``name``: "eos_threshold" (2/eta, plain GD),
    "eos_threshold_momentum" (2 (1 + beta)/eta - lambda_wd: heavy-ball momentum beta and weight
    decay lambda_wd; the closed form of genlab._stability.eos_threshold),
    "sgd_stability_condition" (<= 1 means stable), "sgd_max_sharpness" or
    "sgd_max_nonuniformity"."""
    exprs = _expressions()
    if name not in exprs or name == "symbols":
        names = ", ".join(repr(k) for k in exprs if k != "symbols")
        raise ValueError(f"name must be one of {names}; got {name!r}")
    return exprs[name]


def latex(name: str) -> str:
    """The closed form ``name`` as LaTeX, e.g. ``\\frac{2}{\\eta}`` for the EoS threshold."""
    import sympy as sp

    return sp.latex(expression(name))


@functools.lru_cache(maxsize=8)
def _lambdified(name: str) -> Any:
    import sympy as sp

    symbols = _expressions()["symbols"]
    order = [symbols[k] for k in ("eta", "a", "s", "n", "B")]
    return sp.lambdify(order, expression(name), modules="math")


def _check_batch(batch: int, n: int) -> None:
    if not isinstance(n, int) or n < 2 or not isinstance(batch, int) or not 1 <= batch <= n:
        raise ValueError(f"batch and n must be ints with 1 <= batch <= n and n >= 2; got batch={batch!r}, n={n!r}")


def sgd_max_sharpness(lr: float, batch: int, n: int, nonuniformity: float) -> float:
    """The largest sharpness of a minimum that SGD (``lr``, ``batch`` of ``n``) can stay in when
    its non-uniformity is ``nonuniformity``; NaN when no sharpness is stable (Wu et al. 2018)."""
    eos_threshold(lr)
    _check_batch(batch, n)
    if not math.isfinite(nonuniformity) or nonuniformity < 0:
        raise ValueError(f"nonuniformity must be a finite float >= 0; got {nonuniformity!r}")
    variance = lr**2 * (n - batch) / (batch * (n - 1)) * nonuniformity**2
    if variance > 1:
        return float("nan")
    return float(_lambdified("sgd_max_sharpness")(lr, 0.0, nonuniformity, float(n), float(batch)))


def _gd_threshold(ctx: TheoryContext, name: str) -> Prediction:
    """2 (1 + momentum)/lr - weight_decay (genlab._stability.eos_threshold) for (heavy-ball) GD
    or SGD at a constant learning rate: the EoS plateau value under full-batch GD, an upper bound
    on the sharpness of a minimum SGD with batch < n can stay in. ``sharpness_max`` includes the
    initial sharpness: a network initialised sharper than the threshold violates the SGD bound
    until it leaves that region (the catapult of Lewkowycz et al. 2020). No prediction for other
    optimizers (Adam's, SAM's and Entropy-SGD's thresholds differ: preconditioning, the ascent
    step) or schedules (the threshold moves with the step size)."""
    s = ctx.settings
    if s.optimizer not in ("gd", "sgd") or s.schedule != "constant":
        return Prediction(name, None)
    n = len(ctx.x_train)
    threshold = eos_threshold(s.effective_lr(n), s.momentum, s.weight_decay)
    curve = Curve(ctx.steps, np.full(len(ctx.steps), threshold)) if name == "sharpness" else None
    return Prediction(name, threshold, curve, kind="value" if s.batch(n) == n else "upper")


def sharpness(ctx: TheoryContext) -> Prediction:
    """The final sharpness: the stability threshold, a value under full-batch GD, an upper bound under SGD."""
    return _gd_threshold(ctx, "sharpness")


def sharpness_max(ctx: TheoryContext) -> Prediction:
    """The largest sharpness along training: the stability threshold, a value under full-batch GD, an upper bound under SGD."""
    return _gd_threshold(ctx, "sharpness_max")


def sharpness_late(ctx: TheoryContext) -> Prediction:
    """The late-phase mean sharpness: the stability threshold, a value under full-batch GD, an upper bound under SGD."""
    return _gd_threshold(ctx, "sharpness_late")


def sgd_max_nonuniformity(lr: float, batch: int, n: int) -> float:
    """sqrt(B (n - 1) / (n - B)) / lr: the largest non-uniformity of a minimum SGD with ``lr``
    and ``batch`` of ``n`` can stay in (Wu et al. 2018); inf at full batch."""
    eos_threshold(lr)
    _check_batch(batch, n)
    if batch == n:
        return float("inf")
    return float(_lambdified("sgd_max_nonuniformity")(lr, 0.0, 0.0, float(n), float(batch)))


def _plain_sgd(ctx: TheoryContext) -> bool:
    """The linear-stability analysis is for plain (S)GD: constant step, no momentum, no decay
    (Wu et al.'s second-moment condition has no momentum state and no decay shift)."""
    s = ctx.settings
    return s.optimizer in ("gd", "sgd") and s.schedule == "constant" and s.momentum == 0 and s.weight_decay == 0


def nonuniformity(ctx: TheoryContext) -> Prediction:
    """An upper bound: the non-uniformity of the minimum reached is at most s_max; None at full
    batch (no bound)."""
    if not _plain_sgd(ctx):
        return Prediction("nonuniformity", None, kind="upper")
    n = len(ctx.x_train)
    batch = ctx.settings.batch(n)
    bound = sgd_max_nonuniformity(ctx.settings.effective_lr(n), batch, n)
    return Prediction("nonuniformity", bound if math.isfinite(bound) else None, kind="upper")


def sgd_stability(ctx: TheoryContext) -> Prediction:
    """An upper bound: the stability factor of a minimum SGD stays in is at most 1 (Wu et al.
    2018, Thm. 1)."""
    return Prediction("sgd_stability", 1.0 if _plain_sgd(ctx) else None, kind="upper")
