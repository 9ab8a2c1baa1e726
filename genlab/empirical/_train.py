"""The one training loop: full-batch GD, SGD and Adam on MSE / cross-entropy / logistic losses,
and genlab.optim's SAM / ASAM (2 gradient evaluations per step, on the same batch), Entropy-SGD
(one step = one outer step = L gradient evaluations on L consecutive batches), LARS and LAMB.

Loss conventions (per sample, averaged over the batch):

- "mse": ``1/2 ||f(x) - y||^2``, so that full-batch GD with learning rate eta is the
  function-space recursion of :func:`genlab.kernels.gd_dynamics` at time ``t = eta * steps``;
- "cross_entropy": ``-sum_c y_c log softmax(f)_c`` with one-hot ``y``;
- "logistic": ``log(1 + exp(-y f))`` with ``y`` in {-1, +1} and one output;
- "squared_hinge": ``max(0, 1 - y f)^2`` with ``y`` in {-1, +1} and one output.

The objective is ``loss_scale * mean loss + (weight_decay / 2) ||theta||^2``, where
``loss_scale`` is the module's ``loss_scale`` attribute when it has one (``1/alpha^2`` for
:class:`~genlab.models.OutputScaled`, Chizat et al. 2019) and 1 otherwise. Reported losses are
the unscaled data terms, comparable with the kernel predictions.

A run that produces a NaN/inf loss, or a loss above ``divergence_threshold``, stops there and
is returned with ``diverged=True``: divergence is a result, not an exception.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from genlab.empirical._settings import TrainSettings

#: A measurement hook: called as ``hook(step, module)`` at every measured step; returns named
#: scalars recorded under ``TrainingRun.measurements``.
Hook = Callable[[int, nn.Module], dict[str, float]]


@dataclass
class TrainingRun:
    """What one training run recorded.

    Attributes:
        steps: (T,) the measured steps (0, every ``measurement_interval``, and the last).
        train_loss: (T,) unscaled training loss at those steps.
        test_loss: (T,) test loss, or None without test data.
        diverged: whether training stopped on a NaN/inf or exploding loss.
        final_step: number of updates performed.
        measurements: hook outputs, name -> (T,) values.
        wall_seconds: training time.
    """

    steps: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray | None
    diverged: bool
    final_step: int
    measurements: dict[str, np.ndarray] = field(default_factory=dict)
    wall_seconds: float = 0.0


def resolve_device(device: str) -> torch.device:
    """"auto" -> CUDA when available, else CPU; "cuda" without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but no CUDA device is available; use 'cpu' or 'auto'")
    return torch.device(device)


def torch_dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]


def per_sample_loss(outputs: torch.Tensor, targets: torch.Tensor, loss: str) -> torch.Tensor:
    """The per-sample data loss of the module docstring, shape (batch,)."""
    if loss == "mse":
        # Written out (not F.mse_loss): torch.func transforms of mse_loss hit ZeroTensor errors.
        return 0.5 * ((outputs - targets) ** 2).sum(dim=1)
    if loss == "cross_entropy":
        return -(targets * torch.log_softmax(outputs, dim=1)).sum(dim=1)
    if loss == "squared_hinge":
        return torch.clamp(1.0 - targets * outputs, min=0.0).pow(2).sum(dim=1)
    return nn.functional.softplus(-targets * outputs).sum(dim=1)


def _schedule(settings: TrainSettings) -> Callable[[int], float]:
    """Learning-rate multiplier at step s."""
    steps, warmup = settings.steps, settings.warmup_steps
    if settings.schedule == "constant":
        return lambda s: 1.0
    if settings.schedule == "cosine":
        return lambda s: 0.5 * (1.0 + math.cos(math.pi * s / steps))
    if settings.schedule == "warmup_constant":  # linear warm-up, then constant (Goyal et al. 2017)
        return lambda s: (s + 1) / warmup if s < warmup else 1.0

    def warmup_cosine(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * (s - warmup) / max(steps - warmup, 1)))

    return warmup_cosine


def _optimizer(
    params: Sequence[torch.Tensor], settings: TrainSettings, *, lr: float | None = None, module: nn.Module | None = None
) -> torch.optim.Optimizer:
    """The optimizer of ``settings`` at learning rate ``lr`` (default ``settings.lr``); ``module``
    is the network whose BatchNorm statistics SAM keeps out of its perturbed pass."""
    lr = settings.lr if lr is None else lr
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr)
    if settings.optimizer in ("gd", "sgd"):
        return torch.optim.SGD(params, lr=lr, momentum=settings.momentum)
    from genlab import optim  # the genlab.optim optimizers (loaded only when used)

    if settings.optimizer in ("sam", "asam"):
        return optim.SAM(
            params, torch.optim.SGD, rho=settings.sam_rho, adaptive=settings.optimizer == "asam",
            eta=settings.asam_eta, model=module, lr=lr, momentum=settings.momentum,
        )
    if settings.optimizer == "entropy_sgd":
        return optim.EntropySGD(
            params, lr=lr, langevin_lr=settings.entropy_sgd_lr, langevin_steps=settings.entropy_sgd_steps,
            gamma=settings.entropy_sgd_gamma, scoping=settings.entropy_sgd_scoping, noise=settings.entropy_sgd_noise,
            alpha=settings.entropy_sgd_alpha, momentum=settings.momentum, nesterov=settings.entropy_sgd_nesterov,
            seed=settings.seed,
        )
    if settings.optimizer == "lars":
        return optim.LARS(params, lr=lr, momentum=settings.momentum, trust_coefficient=settings.lars_trust)
    return optim.LAMB(params, lr=lr)


def check_loss_targets(y: torch.Tensor, loss: str) -> None:
    """Cross-entropy needs one-hot targets over >= 2 outputs, logistic one column of +-1."""
    if loss in ("logistic", "squared_hinge") and (y.shape[1] != 1 or not torch.all(y.abs() == 1)):
        raise ValueError(f"train.loss {loss!r} needs one target column with values in {{-1, +1}}")
    if loss == "cross_entropy" and (y.shape[1] < 2 or not torch.all((y == 0) | (y == 1))):
        raise ValueError("train.loss 'cross_entropy' needs one-hot targets with >= 2 columns")


def train(
    module: nn.Module,
    x_train: Any,
    y_train: Any,
    settings: TrainSettings,
    *,
    x_test: Any = None,
    y_test: Any = None,
    hooks: Sequence[Hook] = (),
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
    params: Sequence[torch.Tensor] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TrainingRun:
    """Train ``module`` in place with ``settings`` and record losses every measurement step.

    Args:
        module: the network; its parameters' dtype and device are used for the data.
        x_train, y_train: (n, *input_shape) and (n, k) arrays (numpy or torch).
        settings: optimizer, learning rate, schedule, loss, step budget, seed.
        x_test, y_test: optional held-out data for the test-loss curve.
        hooks: measurement hooks called at every measured step.
        forward: the function trained, default ``module`` itself (the linearized model passes
            its Taylor expansion here); ``params`` are then the tensors it is trained in.
        progress: called as ``progress(step, total)`` at every measured step.
    """
    first = next(iter(module.parameters()))
    device, dtype = first.device, first.dtype
    as_tensor = lambda a: torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).to(device, dtype)  # noqa: E731
    x, y = as_tensor(x_train), as_tensor(y_train)
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y_train must have shape (n, k) with n = {x.shape[0]}; got {tuple(y.shape)}")
    check_loss_targets(y, settings.loss)
    xt = None if x_test is None else as_tensor(x_test)
    yt = None if y_test is None else as_tensor(y_test)
    f = forward or module
    trained = [p for p in module.parameters() if p.requires_grad] if params is None else list(params)
    scale = float(getattr(module, "loss_scale", 1.0))
    optimizer = _optimizer(trained, settings, lr=settings.effective_lr(x.shape[0]), module=module)
    lr_factor = _schedule(settings)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    n = x.shape[0]
    batch = n if settings.batch_size is None else min(settings.batch_size, n)
    generator = torch.Generator().manual_seed(settings.seed)
    order = torch.randperm(n, generator=generator)
    cursor = 0

    def next_batch() -> tuple[torch.Tensor, torch.Tensor]:
        nonlocal order, cursor
        if batch == n:
            return x, y
        if cursor + batch > n:  # new epoch: reshuffle, sampling without replacement
            order, cursor = torch.randperm(n, generator=generator), 0
        index = order[cursor : cursor + batch]
        cursor += batch
        return x[index], y[index]

    def objective_on(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        data_loss = per_sample_loss(f(xb), yb, settings.loss).mean()
        objective = scale * data_loss
        if settings.weight_decay:
            objective = objective + 0.5 * settings.weight_decay * sum((p**2).sum() for p in trained)
        return data_loss, objective

    def gradient_at(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        objective = objective_on(xb, yb)[1]
        objective.backward()
        return objective

    def full_loss(inputs: torch.Tensor, targets: torch.Tensor) -> float:
        with torch.no_grad():
            return float(per_sample_loss(f(inputs), targets, settings.loss).mean())

    recorded: dict[str, list[float]] = {"step": [], "train": [], "test": []}
    extra: dict[str, list[float]] = {}

    def measure(step: int, train_loss: float | None = None) -> None:
        recorded["step"].append(step)
        recorded["train"].append(full_loss(x, y) if train_loss is None else train_loss)
        if xt is not None and yt is not None:
            recorded["test"].append(full_loss(xt, yt))
        for hook in hooks:
            for name, value in hook(step, module).items():
                extra.setdefault(name, []).append(value)
        if progress is not None:
            progress(step, settings.steps)

    measured = set(settings.measured_steps)
    start = time.perf_counter()
    measure(0)
    diverged, step = False, 0
    for step in range(1, settings.steps + 1):
        xb, yb = next_batch()
        data_loss, objective = objective_on(xb, yb)
        value = float(data_loss.detach())
        if not math.isfinite(value) or value > settings.divergence_threshold:
            diverged, step = True, step - 1
            if batch == n and recorded["step"][-1] != step:  # the full loss at the last parameters
                measure(step, value)
            break
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        if settings.optimizer in ("sam", "asam"):
            # 2 gradient evaluations, both on this batch: the first (at w) is already in .grad;
            # SAM runs the second (at w + e) with BatchNorm running statistics frozen.
            first = [objective]
            optimizer.step(lambda: first.pop() if first else gradient_at(xb, yb))
        elif settings.optimizer == "entropy_sgd":
            # L gradient evaluations: the first (at x, on this batch) is already in .grad, the
            # next L - 1 are on the following mini-batches.
            first = [objective]
            optimizer.step(lambda: first.pop() if first else gradient_at(*next_batch()))
        else:
            optimizer.step()
        scheduler.step()
        if step in measured:
            loss_now = full_loss(x, y)
            if not math.isfinite(loss_now) or loss_now > settings.divergence_threshold:
                diverged = True
                measure(step, loss_now)
                break
            measure(step, loss_now)
    return TrainingRun(
        steps=np.asarray(recorded["step"]),
        train_loss=np.asarray(recorded["train"]),
        test_loss=np.asarray(recorded["test"]) if recorded["test"] else None,
        diverged=diverged,
        final_step=step,
        measurements={k: np.asarray(v) for k, v in extra.items()},
        wall_seconds=time.perf_counter() - start,
    )
