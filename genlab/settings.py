"""Training settings: one frozen dataclass, validated on construction (the study schema uses it
as the declaration of the ``[train]`` section, so every rule lives here once).

A bottom-layer module: the theory side reads the settings (learning rate, steps, loss) to predict
what the empirical side's training produces, so neither side owns them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEVICES",
    "DTYPES",
    "LOSSES",
    "LR_SCALINGS",
    "OPTIMIZERS",
    "SCHEDULES",
    "SettingsError",
    "TrainSettings",
    "torch_dtype",
]

OPTIMIZERS = ("gd", "sgd", "adam", "sam", "asam", "entropy_sgd", "lars", "lamb")
LOSSES = ("mse", "cross_entropy", "logistic", "squared_hinge")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "warmup_constant")
LR_SCALINGS = ("none", "linear")
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
            replacement within an epoch), "adam", or one of genlab.optim's (mini-batches too):
            "sam" / "asam" (SAM / ASAM around SGD with ``momentum``; 2 gradient evaluations per
            step), "entropy_sgd" (one step = one outer step = ``entropy_sgd_steps`` gradient
            evaluations, each on the next mini-batch), "lars" (with ``momentum``), "lamb".
        lr: learning rate eta > 0. For "gd" on the MSE loss 1/(2n) sum ||f - y||^2 the
            function-space time is t = lr * steps (see genlab.kernels.gd_dynamics).
        steps: number of parameter updates.
        batch_size: mini-batch size for "sgd"/"adam"; None means the full training set.
        momentum: heavy-ball momentum in [0, 1) for "gd"/"sgd".
        weight_decay: L2 coefficient >= 0 added to the loss as (weight_decay / 2) ||theta||^2.
        schedule: "constant", "cosine" (decay to 0 at the last step), "warmup_cosine" or
            "warmup_constant" (linear warm-up, then constant; Goyal et al. 2017).
        warmup_steps: linear warm-up length for "warmup_cosine" / "warmup_constant".
        loss: "mse" (1/(2n) sum ||f - y||^2), "cross_entropy" (softmax over outputs, targets
            one-hot), "logistic" (log(1 + exp(-y f)) with y in {-1, +1}) or "squared_hinge"
            (max(0, 1 - y f)^2 with y in {-1, +1}).
        dtype: "float64" (default: theory comparisons) or "float32".
        device: "cpu", "cuda", or "auto" (a GPU when one is present, else the CPU).
        measure_every: record losses (and run measurement hooks) every this many steps;
            0 means 50 evenly spaced measurements.
        divergence_threshold: training stops and is marked diverged once the training loss is
            NaN/inf or exceeds this value.
        seed: seed of the network initialisation and of the mini-batch order (and of the
            Entropy-SGD noise).
        lr_scaling: "none", or "linear": the learning rate used is lr * B / base_batch with B the
            actual batch (batch_size capped at n; n for full batch), the linear scaling rule of
            Goyal et al. 2017 (``lr`` is then the rate at batch ``base_batch``).
        base_batch: the reference batch B0 of the linear scaling rule.
        sam_rho: SAM/ASAM neighbourhood radius rho >= 0 (Foret et al. 2021 use 0.05).
        asam_eta: ASAM's offset eta in T_w = |w| + eta (Kwon et al. 2021: 0.01).
        entropy_sgd_steps: Langevin steps L per Entropy-SGD step (Chaudhari et al. 2017).
        entropy_sgd_lr: the SGLD step eta' (0.1 in the paper).
        entropy_sgd_gamma: the coupling (scope) gamma0 > 0.
        entropy_sgd_scoping: gamma1 >= 0 of gamma_t = gamma0 (1 + gamma1)^t.
        entropy_sgd_noise: thermal noise epsilon >= 0.
        entropy_sgd_alpha: weight of the new iterate in the SGLD average, in (0, 1] (0.75).
        entropy_sgd_nesterov: Nesterov form of the outer ``momentum`` (needs momentum > 0).
        lars_trust: LARS trust coefficient eta > 0 (0.001 in You et al. 2017).

    Weight decay stays in the objective for every optimizer (so LARS/LAMB see it inside the
    gradient, not as their own decoupled decay).
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
    lr_scaling: str = "none"
    base_batch: int = 32
    sam_rho: float = 0.05
    asam_eta: float = 0.01
    entropy_sgd_steps: int = 5
    entropy_sgd_lr: float = 0.1
    entropy_sgd_gamma: float = 0.03
    entropy_sgd_scoping: float = 0.0
    entropy_sgd_noise: float = 1e-4
    entropy_sgd_alpha: float = 0.75
    entropy_sgd_nesterov: bool = False
    lars_trust: float = 0.001

    def __post_init__(self) -> None:
        for name, options in (
            ("optimizer", OPTIMIZERS),
            ("loss", LOSSES),
            ("schedule", SCHEDULES),
            ("dtype", DTYPES),
            ("device", DEVICES),
            ("lr_scaling", LR_SCALINGS),
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
        self._check_optim()
        object.__setattr__(self, "lr", float(self.lr))

    def _check_optim(self) -> None:
        """The rules of the large-batch and genlab.optim fields."""
        if not _int(self.base_batch) or self.base_batch < 1:
            raise SettingsError(f"train.base_batch must be an int >= 1; got {self.base_batch!r}")
        if self.lr_scaling != "none" and self.optimizer == "gd":
            # full-batch GD is paired with lr-based closed forms; set its lr directly
            raise SettingsError("train.lr_scaling must be 'none' for optimizer 'gd' (its batch is the training set); use optimizer 'sgd'")
        for name, low, strict in (
            ("sam_rho", 0.0, False), ("asam_eta", 0.0, False), ("entropy_sgd_lr", 0.0, True),
            ("entropy_sgd_gamma", 0.0, True), ("entropy_sgd_scoping", 0.0, False),
            ("entropy_sgd_noise", 0.0, False), ("lars_trust", 0.0, True),
        ):
            value = getattr(self, name)
            if not _real(value) or value < low or (strict and value == low):
                raise SettingsError(f"train.{name} must be a finite float {'>' if strict else '>='} {low:g}; got {value!r}")
        if not _int(self.entropy_sgd_steps) or self.entropy_sgd_steps < 1:
            raise SettingsError(f"train.entropy_sgd_steps must be an int >= 1; got {self.entropy_sgd_steps!r}")
        if not _real(self.entropy_sgd_alpha) or not 0 < self.entropy_sgd_alpha <= 1:
            raise SettingsError(f"train.entropy_sgd_alpha must be a float in (0, 1]; got {self.entropy_sgd_alpha!r}")
        if not isinstance(self.entropy_sgd_nesterov, bool):
            raise SettingsError(f"train.entropy_sgd_nesterov must be true or false; got {self.entropy_sgd_nesterov!r}")
        if self.entropy_sgd_nesterov and self.optimizer == "entropy_sgd" and self.momentum == 0:
            raise SettingsError("train.entropy_sgd_nesterov needs train.momentum > 0")

    def batch(self, n: int) -> int:
        """The mini-batch size on ``n`` training points (n for full batch)."""
        return n if self.batch_size is None else min(self.batch_size, n)

    def effective_lr(self, n: int) -> float:
        """The learning rate used on ``n`` training points: ``lr``, or ``lr * B / base_batch``
        under ``lr_scaling = "linear"`` (before the schedule's multiplier)."""
        return self.lr * self.batch(n) / self.base_batch if self.lr_scaling == "linear" else self.lr

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


def torch_dtype(name: str) -> "torch.dtype":
    """The torch dtype that a ``dtype`` setting names ("float32" or "float64"); torch is
    imported here, on first use, so that validating settings never loads it."""
    import torch

    return {"float32": torch.float32, "float64": torch.float64}[name]
