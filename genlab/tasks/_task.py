"""The Task container, its error type and the validation helpers shared by every task.

Every parameter check goes through one of the ``check_*`` helpers below, so that every task
reports a bad value the same way: ``task.<key> must be <what was expected>; got <value>``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import numpy as np

from genlab._checks import InvalidArgument, choice, integer, is_integer, real

KINDS = ("regression", "classification")


class TaskError(InvalidArgument):
    """A task name, key or parameter value is invalid; a bad value is reported with owner "task"
    and its key, as ``task.<key> must be ...``."""


@dataclass(frozen=True, eq=False)
class Task:
    """One learning problem: train and test inputs and targets, and what produced them.

    Attributes:
        x_train: ``(n_train, *input_shape)`` float64 inputs.
        y_train: ``(n_train, out_dim)`` float64 targets (always 2-D).
        x_test: ``(n_test, *input_shape)`` float64 inputs.
        y_test: ``(n_test, out_dim)`` float64 targets.
        meta: ``"name"``, ``"kind"`` ("regression" or "classification"), ``"input_shape"``,
            ``"params"`` (the resolved parameters, seed included) and, for classification,
            ``"n_classes"``, ``"labels_train"``, ``"labels_test"`` (int arrays), plus whatever the
            task documents (teacher, support, standardization, ...).

    Classification targets: two classes give one column in {-1, +1} (label 1 is +1), K > 2
    classes give a one-hot ``(n, K)`` matrix in {0, 1}.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("x_train", "y_train", "x_test", "y_test"):
            value = getattr(self, name)
            if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch
                value = value.detach().cpu().numpy()
            try:
                arr = np.ascontiguousarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise TaskError(f"Task.{name} must be a real numeric array; got {type(value).__name__}") from None
            arrays[name] = arr
        x_train, y_train, x_test, y_test = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
        if x_train.ndim < 2 or x_test.ndim < 2:
            raise TaskError(
                f"Task.x_train and Task.x_test must have shape (n, *input_shape); got {x_train.shape} and {x_test.shape}"
            )
        if x_train.shape[1:] != x_test.shape[1:]:
            raise TaskError(f"Task.x_test must have input shape {x_train.shape[1:]} like x_train; got {x_test.shape[1:]}")
        for name, y, x in (("y_train", y_train, x_train), ("y_test", y_test, x_test)):
            if y.ndim != 2 or y.shape[0] != x.shape[0]:
                raise TaskError(f"Task.{name} must have shape ({x.shape[0]}, out_dim); got {y.shape}")
        if y_train.shape[1] != y_test.shape[1]:
            raise TaskError(f"Task.y_test must have {y_train.shape[1]} columns like y_train; got {y_test.shape[1]}")
        if not isinstance(self.meta, dict):
            raise TaskError(f"Task.meta must be a dict; got {type(self.meta).__name__}")
        meta = dict(self.meta)
        meta.setdefault("input_shape", tuple(x_train.shape[1:]))
        if "kind" in meta and meta["kind"] not in KINDS:
            raise TaskError(f"Task.meta['kind'] must be one of {', '.join(map(repr, KINDS))}; got {meta['kind']!r}")
        for name, arr in arrays.items():
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "meta", meta)

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.x_train.shape[1:])

    @property
    def out_dim(self) -> int:
        return int(self.y_train.shape[1])

    def __repr__(self) -> str:
        return (
            f"Task(name={self.meta.get('name')!r}, kind={self.meta.get('kind')!r}, n_train={self.n_train}, "
            f"n_test={self.n_test}, input_shape={self.input_shape}, out_dim={self.out_dim})"
        )


# ---------------------------------------------------------------------------------------------
# Parameter checks: one message format for every task.


def check_int(params: Any, key: str, *, low: int | None = None, high: int | None = None, what: str | None = None) -> None:
    """Require ``params.<key>`` to be an int in [low, high]; store it as a plain int."""
    value = integer(getattr(params, key), key, owner="task", minimum=low, maximum=high, expected=what, error=TaskError)
    object.__setattr__(params, key, value)


def check_real(params: Any, key: str, *, low: float | None = None, high: float | None = None, strict_low: bool = False) -> None:
    """Require ``params.<key>`` to be a finite real in [low, high] (or (low, high]); store it as a float."""
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if strict_low else '>='} {low:g}")
    if high is not None:
        bounds.append(f"<= {high:g}")
    what = " ".join(["a finite float", " and ".join(bounds)]).strip()
    value = real(getattr(params, key), key, owner="task", low=low, high=high, low_open=strict_low, expected=what, error=TaskError)
    object.__setattr__(params, key, value)


def check_choice(params: Any, key: str, options: tuple[str, ...]) -> None:
    choice(getattr(params, key), key, options, owner="task", error=TaskError)


def check_classes(params: Any, key: str, valid: tuple[int, ...]) -> None:
    """Require None or a list/tuple of >= 2 distinct class labels from ``valid``; store a tuple."""
    value = getattr(params, key)
    if value is None:
        return
    bad = TaskError(f"must be None or a list of at least 2 distinct ints from {min(valid)}..{max(valid)}; got {value!r}",
                    key=key, owner="task")
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise bad
    items = list(value)
    if len(items) < 2 or not all(is_integer(c) and int(c) in valid for c in items) or len(set(map(int, items))) != len(items):
        raise bad
    object.__setattr__(params, key, tuple(int(c) for c in items))


def check_seed(seed: Any) -> int:
    return integer(seed, "seed", owner="task", error=TaskError)


# ---------------------------------------------------------------------------------------------
# Randomness: one independent, named stream per purpose.


def rng(seed: int, task: str, stream: str) -> np.random.Generator:
    """A numpy Generator for ``stream`` of ``task`` under ``seed``.

    Streams are independent (SeedSequence entropy ``[|seed|, sign, crc32(task/stream)]``), so that
    e.g. the label noise does not change the inputs, and the test set does not depend on n_train.
    """
    return np.random.default_rng(_entropy(seed, task, stream))


def derived_seed(seed: int, task: str, stream: str) -> int:
    """A 32-bit int seed for libraries that take one (torch, mnist1d), derived like :func:`rng`."""
    return int(np.random.SeedSequence(_entropy(seed, task, stream)).generate_state(1)[0])


def _entropy(seed: int, task: str, stream: str) -> list[int]:
    return [abs(seed), int(seed < 0), zlib.crc32(f"{task}/{stream}".encode())]


# ---------------------------------------------------------------------------------------------
# Shared building blocks.


def class_targets(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Targets of int ``labels`` in 0..n_classes-1: ±1 column for 2 classes, one-hot otherwise."""
    labels = np.asarray(labels)
    if n_classes == 2:
        return (2.0 * labels - 1.0).astype(np.float64)[:, None]
    return np.eye(n_classes, dtype=np.float64)[labels]


def classification_meta(labels_train: np.ndarray, labels_test: np.ndarray, n_classes: int) -> dict:
    return {
        "n_classes": int(n_classes),
        "labels_train": np.asarray(labels_train, dtype=np.int64),
        "labels_test": np.asarray(labels_test, dtype=np.int64),
    }


def standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """Standardise every feature (axis 0) with the train mean and std (ddof 0).

    A feature whose train std is zero (relative to its mean, 1e-12) carries no information
    learnable from the train set: it is set to 0 in train *and* test, and its std is reported as 0.
    """
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    constant = std <= 1e-12 * np.maximum(1.0, np.abs(mean))
    std = np.where(constant, 0.0, std)
    scale = np.where(constant, 1.0, std)
    out = [np.where(constant, 0.0, (x - mean) / scale) for x in (x_train, x_test)]
    return out[0], out[1], {"mean": mean, "std": std}


@dataclass(frozen=True, kw_only=True)
class TaskParams:
    """Base of every task's parameters: the split sizes, validated like every other key."""

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "regression"

    n_train: int = 100
    n_test: int = 100

    def __post_init__(self) -> None:
        check_int(self, "n_train", low=1)
        check_int(self, "n_test", low=1)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys a config may set for this task, sorted."""
        return tuple(sorted(f.name for f in fields(cls)))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def generate(self, *, seed: int) -> Task:  # pragma: no cover - every task overrides it
        raise NotImplementedError

    def _task(self, seed: int, x_train, y_train, x_test, y_test, **meta: Any) -> Task:
        params = self.as_dict()
        params["seed"] = seed
        head = {"name": self.name, "kind": self.kind, "input_shape": tuple(np.shape(x_train)[1:]), "params": params}
        return Task(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, meta={**head, **meta})
