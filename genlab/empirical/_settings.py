"""Training settings: one frozen dataclass, validated on construction (the study schema uses it
as the declaration of the ``[train]`` section, so every rule lives here once)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

OPTIMIZERS = ("gd", "sgd", "adam")
LOSSES = ("mse", "cross_entropy", "logistic", "squared_hinge")
SCHEDULES = ("constant", "cosine", "warmup_cosine")
DTYPES = ("float32", "float64")
DEVICES = ("cpu", "cuda", "auto")


class SettingsError(ValueError):
    """A training setting has an invalid value; the message names the key."""


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, kw_only=True)
class TrainSettings:
    """How a network is trained.

    Attributes:
        optimizer: "gd" (full batch), "sgd" (mini-batches of ``batch_size``, sampled without
            replacement within an epoch), or "adam".
        lr: learning rate eta > 0. For "gd" on the MSE loss 1/(2n) sum ||f - y||^2 the
            function-space time is t = lr * steps (see genlab.kernels.gd_dynamics).
        steps: number of parameter updates.
        batch_size: mini-batch size for "sgd"/"adam"; None means the full training set.
        momentum: heavy-ball momentum in [0, 1) for "gd"/"sgd".
        weight_decay: L2 coefficient >= 0 added to the loss as (weight_decay / 2) ||theta||^2.
        schedule: "constant", "cosine" (decay to 0 at the last step) or "warmup_cosine".
        warmup_steps: linear warm-up length for "warmup_cosine".
        loss: "mse" (1/(2n) sum ||f - y||^2), "cross_entropy" (softmax over outputs, targets
            one-hot), "logistic" (log(1 + exp(-y f)) with y in {-1, +1}) or "squared_hinge"
            (max(0, 1 - y f)^2 with y in {-1, +1}).
        dtype: "float64" (default: theory comparisons) or "float32".
        device: "cpu", "cuda", or "auto" (a GPU when one is present, else the CPU).
        measure_every: record losses (and run measurement hooks) every this many steps;
            0 means 50 evenly spaced measurements.
        divergence_threshold: training stops and is marked diverged once the training loss is
            NaN/inf or exceeds this value.
        seed: seed of the network initialisation and of the mini-batch order.
    """

    optimizer: str = "gd"
    lr: float = 0.1
    steps: int = 1000
    batch_size: int | None = None
    momentum: float = 0.0
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    loss: str = "mse"
    dtype: str = "float64"
    device: str = "cpu"
    measure_every: int = 0
    divergence_threshold: float = 1e6
    seed: int = 0

    def __post_init__(self) -> None:
        for name, options in (
            ("optimizer", OPTIMIZERS),
            ("loss", LOSSES),
            ("schedule", SCHEDULES),
            ("dtype", DTYPES),
            ("device", DEVICES),
        ):
            value = getattr(self, name)
            if value not in options:
                raise SettingsError(f"train.{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
        if not _real(self.lr) or self.lr <= 0:
            raise SettingsError(f"train.lr must be a finite float > 0; got {self.lr!r}")
        if not _int(self.steps) or self.steps < 1:
            raise SettingsError(f"train.steps must be an int >= 1; got {self.steps!r}")
        if self.batch_size is not None and (not _int(self.batch_size) or self.batch_size < 1):
            raise SettingsError(f"train.batch_size must be None or an int >= 1; got {self.batch_size!r}")
        if not _real(self.momentum) or not 0 <= self.momentum < 1:
            raise SettingsError(f"train.momentum must be a float in [0, 1); got {self.momentum!r}")
        if not _real(self.weight_decay) or self.weight_decay < 0:
            raise SettingsError(f"train.weight_decay must be a finite float >= 0; got {self.weight_decay!r}")
        if not _int(self.warmup_steps) or not 0 <= self.warmup_steps <= self.steps:
            raise SettingsError(f"train.warmup_steps must be an int in [0, steps={self.steps}]; got {self.warmup_steps!r}")
        if not _int(self.measure_every) or self.measure_every < 0:
            raise SettingsError(f"train.measure_every must be an int >= 0; got {self.measure_every!r}")
        if not _real(self.divergence_threshold) or self.divergence_threshold <= 0:
            raise SettingsError(f"train.divergence_threshold must be a finite float > 0; got {self.divergence_threshold!r}")
        if not _int(self.seed):
            raise SettingsError(f"train.seed must be an int; got {self.seed!r}")
        if self.optimizer == "gd" and self.batch_size is not None:
            raise SettingsError("train.batch_size must be None for optimizer 'gd' (full batch); use optimizer 'sgd'")
        object.__setattr__(self, "lr", float(self.lr))

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @property
    def measurement_interval(self) -> int:
        """Steps between measurements (``measure_every``, or steps // 50 when it is 0)."""
        return self.measure_every or max(1, self.steps // 50)

    @property
    def measured_steps(self) -> tuple[int, ...]:
        """The steps at which a run that does not diverge is measured: 0, every interval, the last."""
        regular = tuple(range(0, self.steps + 1, self.measurement_interval))
        return regular if regular[-1] == self.steps else regular + (self.steps,)
