"""What every worker trains and how rank 0 measures the center.

The task, the network and the loss of a run, built identically on every worker from
``run.json`` (same task seed, same init seed; the optimizer then broadcasts rank 0's
parameters anyway). The center is measured on the whole training and test sets: train loss,
test loss, test error, and on the scheduled rounds the sharpness, the top eigenvalue of the
Hessian of the training loss on the first ``sharpness_samples`` training points
(:func:`genlab.empirical._curvature.top_eigenvalues`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from genlab.empirical._curvature import top_eigenvalues
from genlab.empirical._train import per_sample_loss
from genlab.models import ArchSpec
from genlab.optim._distributed import set_flat_params
from genlab.settings import torch_dtype
from genlab.tasks import Task, make_task


@dataclass
class Problem:
    """The task, this worker's network, the loss and the data as tensors on the device."""

    task: Task
    model: torch.nn.Module
    loss: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_sharp: torch.Tensor
    y_sharp: torch.Tensor


def loss_name(task: Task, requested: str) -> str:
    """``requested``, or for "auto": cross-entropy (several outputs) or logistic (one) on a
    classification task, else MSE."""
    if requested != "auto":
        return requested
    if task.meta.get("kind") == "classification":
        return "cross_entropy" if task.y_train.shape[1] > 1 else "logistic"
    return "mse"


def build_problem(cfg: dict[str, Any], device: torch.device) -> Problem:
    """The problem of a resolved run config (``run.json``) on ``device``."""
    par = cfg["parallel"]
    task_params = {k: v for k, v in cfg["task"].items() if k not in ("name", "seed")}
    task = make_task(cfg["task"]["name"], seed=cfg["task"]["seed"], **task_params)
    dtype = torch_dtype(par["dtype"])
    spec = ArchSpec(**cfg["model"], out_dim=task.y_train.shape[1])
    model = spec.to_torch(par["width"], input_shape=tuple(task.x_train.shape[1:]), seed=par["seed"], dtype=dtype).to(device)

    def as_tensor(a: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a), dtype=dtype, device=device)

    m = min(par["sharpness_samples"], task.x_train.shape[0])
    return Problem(task, model, loss_name(task, par["loss"]), as_tensor(task.x_train), as_tensor(task.y_train),
                   as_tensor(task.x_test), as_tensor(task.y_test), as_tensor(task.x_train[:m]), as_tensor(task.y_train[:m]))


def _test_error(prob: Problem, out: torch.Tensor) -> float:
    """Share of misclassified test points (argmax of several outputs, sign of one); NaN for regression."""
    if prob.task.meta.get("kind") != "classification":
        return float("nan")
    if prob.y_test.shape[1] > 1:
        return float((out.argmax(1) != prob.y_test.argmax(1)).double().mean())
    return float((torch.sign(out) != prob.y_test).double().mean())


def evaluate_center(prob: Problem, center: torch.Tensor, *, sharpness: bool, seed: int) -> tuple[float, float, float, float]:
    """Train loss, test loss, test error and (when ``sharpness``, else NaN) sharpness of the center."""
    net = copy.deepcopy(prob.model)
    set_flat_params(list(net.parameters()), center)
    with torch.no_grad():
        train = float(per_sample_loss(net(prob.x_train), prob.y_train, prob.loss).mean())
        out = net(prob.x_test)
        test = float(per_sample_loss(out, prob.y_test, prob.loss).mean())
        error = _test_error(prob, out)
    sharp = float("nan")
    if sharpness and math.isfinite(train):
        sharp = float(top_eigenvalues(net, prob.x_sharp, prob.y_sharp, k=1, loss=prob.loss, seed=seed).values[0])
    return train, test, error, sharp
