"""Implicit-bias measurements of a trained linear predictor (mirrors genlab.theory.implicit_bias).

The models whose implicit bias theory predicts compute a linear function ``f(x) = <beta, x>``:
the linear network (fc, depth 0, identity, no bias; possibly output-scaled) and the diagonal
linear network ``beta = u*u - v*v``. The learned ``beta`` is read off the trained module as
``beta_j = f(e_j) - f(0)`` (so the measurement does not depend on how the model stores it), and
the model is checked to be linear on the training inputs (``f(x) = <beta, x>`` to 1e-8
relative); for other models every quantity here is None. Conventions:

- ``solution_distance`` = ||beta_T - beta_pred|| / ||beta_pred||, where beta_pred is the
  implicit-bias solution computed from the same data and initial module with the theory's
  solvers in genlab.linear (min-norm from beta_0 for a linear model, the Q_alpha problem for a
  diagonal net with alpha its init scale); MSE only;
- ``solution_l1``, ``solution_l2``: ||beta_T||_1, ||beta_T||_2;
- ``support_recovery``: fraction of the planted support among the k largest |beta_T,i|, where
  beta* is read off the clean test set (genlab.linear.planted_beta);
- ``solution_test_mse``: mean over test points of (f(x) - y)^2;
- ``margin_cosine``: cos(beta_t, w_svm) with the hard-margin SVM direction, and
  ``normalized_margin``: min_i y_i <beta_t, x_i> / ||beta_t||, both at every measured step (a
  training hook; NaN while beta_t = 0) as curves, the final value as the scalar; separable
  +-1 classification only;
- ``direction_test_error``: misclassification rate of sign(f(x)) on the test set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from genlab.empirical._context import EmpiricalContext
from genlab.empirical._train import Hook
from genlab.linear import (
    cosine,
    hypentropy_solution,
    l1_norm,
    l2_norm,
    margin_of,
    max_margin_direction,
    mean_squared_error,
    min_norm_solution,
    planted_support_recovery,
    sign_error,
)
from genlab.quantities import Curve, Measurement
from genlab.settings import TrainSettings

#: Relative tolerance of the linearity check f(x) = <beta, x>.
LINEARITY_TOL = 1e-8


def effective_beta(module: nn.Module, d: int) -> np.ndarray:
    """``beta_j = f(e_j) - f(0)`` for the first output of ``module`` on (d,) inputs."""
    ref = next(iter(module.parameters()))
    with torch.no_grad():
        probe = torch.cat([torch.zeros(1, d), torch.eye(d)]).to(ref.device, ref.dtype)
        out = module(probe)[:, 0].double().cpu().numpy()
    return out[1:] - out[0]


def linear_beta(module: nn.Module, x: np.ndarray) -> np.ndarray | None:
    """The module's beta when it computes ``<beta, x>`` (no offset, one output) on ``x``, else None."""
    if x.ndim != 2:
        return None
    ref = next(iter(module.parameters()))
    with torch.no_grad():
        probe = torch.cat([torch.zeros(1, x.shape[1], dtype=torch.float64), torch.as_tensor(x)]).to(ref.device, ref.dtype)
        out = module(probe).double().cpu().numpy()
    if out.shape[1] != 1:
        return None
    beta = effective_beta(module, x.shape[1])
    scale = max(float(np.abs(out[1:, 0]).max()), float(np.abs(x @ beta).max()), 1e-12)
    if abs(out[0, 0]) > LINEARITY_TOL * scale or np.abs(out[1:, 0] - x @ beta).max() > LINEARITY_TOL * scale:
        return None
    return beta


def _betas(ctx: EmpiricalContext) -> tuple[np.ndarray, np.ndarray] | None:
    """(beta_0, beta_T) of a linear model, or None."""
    def compute() -> tuple[np.ndarray, np.ndarray] | None:
        if ctx.run.diverged:
            return None
        beta0, beta = linear_beta(ctx.module0, ctx.x_train), linear_beta(ctx.module, ctx.x_train)
        return None if beta0 is None or beta is None else (beta0, beta)

    return ctx.cached("implicit_bias/betas", compute)


def _reference(ctx: EmpiricalContext) -> np.ndarray | None:
    """The implicit-bias solution for this data and initial module (MSE, linear models; none
    for an output-scaled diagonal net, whose potential is not Q_alpha)."""
    from genlab.models._diagonal import DiagonalLinear
    from genlab.models._scaled import OutputScaled

    betas = _betas(ctx)
    if betas is None or ctx.settings.loss != "mse":
        return None
    if isinstance(ctx.module0, OutputScaled) and isinstance(ctx.module0.module, DiagonalLinear):
        return None

    def compute() -> np.ndarray:
        if isinstance(ctx.module0, DiagonalLinear):
            return hypentropy_solution(ctx.x_train, ctx.y_train, ctx.module0.init_scale)
        return min_norm_solution(ctx.x_train, ctx.y_train, betas[0])

    return ctx.cached("implicit_bias/reference", compute)


def _final(ctx: EmpiricalContext) -> np.ndarray | None:
    betas = _betas(ctx)
    return None if betas is None else betas[1]


def solution_distance(ctx: EmpiricalContext) -> Measurement:
    beta, reference = _final(ctx), _reference(ctx)
    if beta is None or reference is None:
        return Measurement("solution_distance", None)
    return Measurement("solution_distance", float(np.linalg.norm(beta - reference) / np.linalg.norm(reference)))


def solution_l1(ctx: EmpiricalContext) -> Measurement:
    beta = _final(ctx)
    return Measurement("solution_l1", None if beta is None else l1_norm(beta))


def solution_l2(ctx: EmpiricalContext) -> Measurement:
    beta = _final(ctx)
    return Measurement("solution_l2", None if beta is None else l2_norm(beta))


def support_recovery(ctx: EmpiricalContext) -> Measurement:
    beta = _final(ctx)
    return Measurement("support_recovery", None if beta is None else planted_support_recovery(beta, ctx.x_test, ctx.y_test))


def solution_test_mse(ctx: EmpiricalContext) -> Measurement:
    beta = _final(ctx)
    return Measurement("solution_test_mse", None if beta is None else mean_squared_error(beta, ctx.x_test, ctx.y_test))


def _separable(x: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    """w_svm when the +-1 targets are separable through the origin, else None."""
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] != 1 or not np.all(np.abs(y) == 1) or np.asarray(x).ndim != 2:
        return None
    try:
        return max_margin_direction(x, y)
    except ValueError:
        return None


def margin_hook(module: nn.Module, x_train: Any, y_train: Any, settings: TrainSettings) -> Hook:
    """Records ``margin_cosine`` and ``normalized_margin`` of the linear predictor at every
    measured step (nothing for a non-linear model or non-separable data)."""
    x, y = np.asarray(x_train, dtype=np.float64), np.asarray(y_train, dtype=np.float64)
    w_svm = _separable(x, y) if linear_beta(module, x) is not None else None

    def hook(step: int, module: nn.Module) -> dict[str, float]:
        if w_svm is None:
            return {}
        beta = effective_beta(module, x.shape[1])
        if not np.linalg.norm(beta) > 0:
            return {"margin_cosine": float("nan"), "normalized_margin": float("nan")}
        return {"margin_cosine": cosine(beta, w_svm), "normalized_margin": margin_of(beta, x, y)}

    return hook


def _margin_measurement(ctx: EmpiricalContext, name: str) -> Measurement:
    values = ctx.run.measurements.get(name)
    if values is None or ctx.run.diverged or _final(ctx) is None:
        return Measurement(name, None)
    steps = np.asarray(ctx.run.steps)
    after = steps >= 1  # against log10(step): the 1/log t approach is a straight line there
    return Measurement(name, float(values[-1]), Curve(np.log10(steps[after]), np.asarray(values)[after], x_label="log10_step"))


def margin_cosine(ctx: EmpiricalContext) -> Measurement:
    return _margin_measurement(ctx, "margin_cosine")


def normalized_margin(ctx: EmpiricalContext) -> Measurement:
    return _margin_measurement(ctx, "normalized_margin")


def direction_test_error(ctx: EmpiricalContext) -> Measurement:
    beta = _final(ctx)
    if beta is None or ctx.kind != "classification" or ctx.y_test.shape[1] != 1:
        return Measurement("direction_test_error", None)
    return Measurement("direction_test_error", sign_error(beta, ctx.x_test, ctx.y_test))
