"""Kernel-regime measurements of a trained network (mirrors genlab.theory.kernel_regime).

Each function takes the cell's :class:`EmpiricalContext` and returns a :class:`Measurement`
named as the paired theory prediction. Conventions:

- losses are the unscaled data losses of genlab.empirical._train (MSE: mean of 1/2 ||f - y||^2);
- ``test_mse`` is the mean over test samples of ||f(x) - y||^2 (summed over outputs);
- ``test_error`` is the misclassification rate (sign for +-1 targets, argmax for one-hot);
- kernels are measured on the probe (the first PROBE_SIZE training points);
- ``ntk_drift`` = ||Theta_T - Theta_0||_F / ||Theta_0||_F (Jacot et al. 2018 predict 0 at
  infinite width; Lee et al. 2019 bound it by O(width^-1/2));
- ``alignment_*`` is the centered kernel-target alignment (Cortes, Mohri & Rostamizadeh 2012)
  of the empirical NTK with the probe targets;
- ``weight_change`` = ||theta_T - theta_0|| / ||theta_0|| over the trained parameters;
- ``linearization_distance`` = RMS(f_net - f_lin) / RMS(y) on the test set, where f_lin is the
  first-order Taylor model at theta_0 trained with the same optimizer (Lee et al. 2019); None
  when the network or f_lin diverged (f_lin can diverge while the net converges: beyond
  lr = 2n / lambda_max(Theta_0), the catapult phase of Lewkowycz et al. 2020).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from genlab.empirical._context import EmpiricalContext, linear_closed_form
from genlab.settings import TrainSettings
from genlab.empirical._train import Hook
from genlab.kernels import empirical_ntk, kernel_target_alignment
from genlab.quantities import PROBE_SIZE, Curve, Measurement


def mean_squared_error(outputs: np.ndarray, targets: np.ndarray) -> float:
    """(1/m) sum_i ||f_i - y_i||^2."""
    return float(np.mean(np.sum((outputs - targets) ** 2, axis=1)))


def classification_error(outputs: np.ndarray, targets: np.ndarray) -> float:
    """Misclassification rate: sign agreement for one +-1 column, argmax for one-hot targets."""
    if targets.shape[1] == 1:
        return float(np.mean(np.sign(outputs[:, 0]) != np.sign(targets[:, 0])))
    return float(np.mean(np.argmax(outputs, axis=1) != np.argmax(targets, axis=1)))


def _final_or_none(ctx: EmpiricalContext, value: Callable[[], float | None]) -> float | None:
    return None if ctx.run.diverged else value()


def train_loss(ctx: EmpiricalContext) -> Measurement:
    return Measurement("train_loss", float(ctx.run.train_loss[-1]))


def test_loss(ctx: EmpiricalContext) -> Measurement:
    return Measurement("test_loss", None if ctx.run.test_loss is None else float(ctx.run.test_loss[-1]))


def train_loss_curve(ctx: EmpiricalContext) -> Measurement:
    return Measurement("train_loss_curve", float(ctx.run.train_loss[-1]), Curve(ctx.run.steps, ctx.run.train_loss))


def test_loss_curve(ctx: EmpiricalContext) -> Measurement:
    curve = None if ctx.run.test_loss is None else Curve(ctx.run.steps, ctx.run.test_loss)
    return Measurement("test_loss_curve", None if curve is None else float(curve.y[-1]), curve)


def test_mse(ctx: EmpiricalContext) -> Measurement:
    value = _final_or_none(ctx, lambda: mean_squared_error(ctx.outputs("end", ctx.x_test, "test"), ctx.y_test))
    return Measurement("test_mse", value)


def test_error(ctx: EmpiricalContext) -> Measurement:
    if ctx.kind != "classification":
        return Measurement("test_error", None)
    value = _final_or_none(ctx, lambda: classification_error(ctx.outputs("end", ctx.x_test, "test"), ctx.y_test))
    return Measurement("test_error", value)


def relative_frobenius(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b||_F / ||b||_F."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def ntk_drift(ctx: EmpiricalContext) -> Measurement:
    """Final drift; the curve comes from :func:`ntk_drift_hook` when it was installed."""
    value = _final_or_none(ctx, lambda: relative_frobenius(ctx.ntk("end"), ctx.ntk("init")))
    steps = ctx.run.measurements.get("ntk_drift_step")
    curve = None if steps is None else Curve(steps, ctx.run.measurements["ntk_drift"])
    return Measurement("ntk_drift", value, curve)


def ntk_drift_hook(
    module: nn.Module, x_train: np.ndarray, y_train: np.ndarray, settings: TrainSettings, *, checkpoints: int = 10
) -> Hook:
    """A training hook recording the drift on the probe at ``checkpoints`` evenly spaced steps."""
    probe = x_train[:PROBE_SIZE]
    initial = empirical_ntk(module, probe)
    steps = settings.steps
    every = max(1, steps // checkpoints)

    def hook(step: int, net: nn.Module) -> dict[str, float]:
        if step % every and step != steps:
            return {}
        return {"ntk_drift_step": float(step), "ntk_drift": relative_frobenius(empirical_ntk(net, probe), initial)}

    return hook


def alignment_init(ctx: EmpiricalContext) -> Measurement:
    return Measurement("alignment_init", kernel_target_alignment(ctx.ntk("init"), ctx.probe[1], centered=True))


def alignment_end(ctx: EmpiricalContext) -> Measurement:
    value = _final_or_none(ctx, lambda: kernel_target_alignment(ctx.ntk("end"), ctx.probe[1], centered=True))
    return Measurement("alignment_end", value)


def _flat_params(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters() if p.requires_grad])


def weight_change(ctx: EmpiricalContext) -> Measurement:
    theta0, theta = _flat_params(ctx.module0), _flat_params(ctx.module)
    value = _final_or_none(ctx, lambda: float(torch.linalg.norm(theta - theta0) / torch.linalg.norm(theta0)))
    return Measurement("weight_change", value)


def _linearized_diverged(ctx: EmpiricalContext) -> bool:
    """Whether training the linearized model diverged by train()'s rule (a NaN/inf loss or one
    above ``divergence_threshold``). Its outputs are then no measurement: explicit training stops
    where the loss crossed the threshold while the GD closed form runs every step, so the distance
    would be set by the threshold and the route (one GD run at lr = 2, width 16: 1.5e3 through
    explicit training, 2.4e10 through the closed form)."""
    if linear_closed_form(ctx.settings) and ctx.y_train.shape[1] == 1:  # the route of ctx.outputs
        lin = ctx.outputs("linear", ctx.x_train, "train")
        with np.errstate(over="ignore", invalid="ignore"):  # a diverged closed form may reach inf
            loss = 0.5 * float(np.mean(np.sum((lin - ctx.y_train) ** 2, axis=1)))  # the closed form is MSE only
        return not np.isfinite(loss) or loss > ctx.settings.divergence_threshold
    return ctx.linearized()[1].diverged


def linearization_distance(ctx: EmpiricalContext) -> Measurement:
    def compute() -> float | None:
        if _linearized_diverged(ctx):
            return None
        net = ctx.outputs("end", ctx.x_test, "test")
        lin = ctx.outputs("linear", ctx.x_test, "test")
        return float(np.sqrt(np.mean((net - lin) ** 2)) / np.sqrt(np.mean(ctx.y_test**2)))

    return Measurement("linearization_distance", _final_or_none(ctx, compute))
