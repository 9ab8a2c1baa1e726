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

from genlab.settings import TrainSettings

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


class _Batches:
    """Mini-batches of ``batch`` rows drawn without replacement, reshuffled every epoch from a
    generator seeded by ``seed``; the whole set when ``batch`` is None or >= n."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int | None, seed: int) -> None:
        self.x, self.y, self.n = x, y, x.shape[0]
        self.size = self.n if batch_size is None else min(batch_size, self.n)
        self.generator = torch.Generator().manual_seed(seed)
        self.order, self.cursor = torch.randperm(self.n, generator=self.generator), 0

    @property
    def full(self) -> bool:
        return self.size == self.n

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.full:
            return self.x, self.y
        if self.cursor + self.size > self.n:  # new epoch: reshuffle
            self.order, self.cursor = torch.randperm(self.n, generator=self.generator), 0
        index = self.order[self.cursor : self.cursor + self.size]
        self.cursor += self.size
        return self.x[index], self.y[index]


@dataclass
class _Objective:
    """``scale * mean loss(f(x), y) + (weight_decay / 2) ||theta||^2`` over the trained tensors,
    and the unscaled mean loss reported beside it."""

    f: Callable[[torch.Tensor], torch.Tensor]
    trained: list[torch.Tensor]
    loss: str
    scale: float
    weight_decay: float

    def __call__(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        data_loss = per_sample_loss(self.f(xb), yb, self.loss).mean()
        objective = self.scale * data_loss
        if self.weight_decay:
            objective = objective + 0.5 * self.weight_decay * sum((p**2).sum() for p in self.trained)
        return data_loss, objective

    def data_loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> float:
        with torch.no_grad():
            return float(per_sample_loss(self.f(inputs), targets, self.loss).mean())


def _step(
    optimizer: torch.optim.Optimizer, name: str, objective: _Objective, computed: torch.Tensor,
    batch: tuple[torch.Tensor, torch.Tensor], batches: _Batches,
) -> None:
    """One optimizer step after ``computed.backward()`` filled ``.grad`` at the current point.

    SAM/ASAM take 2 gradient evaluations on the same batch (the second at w + e, with BatchNorm
    statistics frozen by SAM itself); Entropy-SGD takes L, the first on this batch and the
    next L - 1 on the following mini-batches; every other optimizer takes the one computed."""
    if name not in ("sam", "asam", "entropy_sgd"):
        optimizer.step()
        return

    def gradient_at(xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        value = objective(xb, yb)[1]
        value.backward()
        return value

    pending = [computed]
    if name == "entropy_sgd":
        optimizer.step(lambda: pending.pop() if pending else gradient_at(*batches.next()))
    else:
        optimizer.step(lambda: pending.pop() if pending else gradient_at(*batch))


class _Recorder:
    """Losses and hook outputs at the measured steps."""

    def __init__(self, module: nn.Module, objective: _Objective, train_data: tuple[torch.Tensor, torch.Tensor],
                 test_data: tuple[torch.Tensor, torch.Tensor] | None, hooks: Sequence[Hook],
                 progress: Callable[[int, int], None] | None, total: int) -> None:
        self.module, self.objective, self.train_data, self.test_data = module, objective, train_data, test_data
        self.hooks, self.progress, self.total = hooks, progress, total
        self.steps: list[int] = []
        self.train: list[float] = []
        self.test: list[float] = []
        self.extra: dict[str, list[float]] = {}

    def train_loss(self) -> float:
        return self.objective.data_loss(*self.train_data)

    def measure(self, step: int, train_loss: float | None = None) -> None:
        self.steps.append(step)
        self.train.append(self.train_loss() if train_loss is None else train_loss)
        if self.test_data is not None:
            self.test.append(self.objective.data_loss(*self.test_data))
        for hook in self.hooks:
            for name, value in hook(step, self.module).items():
                self.extra.setdefault(name, []).append(value)
        if self.progress is not None:
            self.progress(step, self.total)

    def run(self, *, diverged: bool, final_step: int, wall_seconds: float) -> TrainingRun:
        return TrainingRun(
            steps=np.asarray(self.steps), train_loss=np.asarray(self.train),
            test_loss=np.asarray(self.test) if self.test else None, diverged=diverged, final_step=final_step,
            measurements={k: np.asarray(v) for k, v in self.extra.items()}, wall_seconds=wall_seconds,
        )


def _exploded(value: float, settings: TrainSettings) -> bool:
    return not math.isfinite(value) or value > settings.divergence_threshold


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
    x, y, test_data = _training_data(module, x_train, y_train, x_test, y_test, settings.loss)
    trained = [p for p in module.parameters() if p.requires_grad] if params is None else list(params)
    objective = _Objective(forward or module, trained, settings.loss, float(getattr(module, "loss_scale", 1.0)),
                           settings.weight_decay)
    optimizer = _optimizer(trained, settings, lr=settings.effective_lr(x.shape[0]), module=module)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(settings))
    batches = _Batches(x, y, settings.batch_size, settings.seed)
    recorder = _Recorder(module, objective, (x, y), test_data, hooks, progress, settings.steps)
    measured = set(settings.measured_steps)
    start = time.perf_counter()
    recorder.measure(0)
    diverged, step = False, 0
    for step in range(1, settings.steps + 1):
        batch = batches.next()
        data_loss, value = objective(*batch)
        if _exploded(float(data_loss.detach()), settings):
            diverged, step = True, step - 1
            if batches.full and recorder.steps[-1] != step:  # the full loss at the last parameters
                recorder.measure(step, float(data_loss.detach()))
            break
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        _step(optimizer, settings.optimizer, objective, value, batch, batches)
        scheduler.step()
        if step in measured:
            loss_now = recorder.train_loss()
            recorder.measure(step, loss_now)
            if _exploded(loss_now, settings):
                diverged = True
                break
    return recorder.run(diverged=diverged, final_step=step, wall_seconds=time.perf_counter() - start)


def _training_data(
    module: nn.Module, x_train: Any, y_train: Any, x_test: Any, y_test: Any, loss: str,
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """The data as tensors on the module's device and dtype, with the targets checked."""
    first = next(iter(module.parameters()))

    def as_tensor(a: Any) -> torch.Tensor:
        return torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).to(first.device, first.dtype)

    x, y = as_tensor(x_train), as_tensor(y_train)
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y_train must have shape (n, k) with n = {x.shape[0]}; got {tuple(y.shape)}")
    check_loss_targets(y, loss)
    has_test = x_test is not None and y_test is not None
    return x, y, (as_tensor(x_test), as_tensor(y_test)) if has_test else None
