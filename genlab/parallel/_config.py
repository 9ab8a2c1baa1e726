"""The ``train-parallel`` config: ``[task]``, ``[model]``, ``[parallel]`` and an optional ``[sweep]``.

Validated by the study schema's machinery (:mod:`genlab.study._schema`): the top level,
``[parallel]`` and ``[sweep]`` are pydantic models, ``[task]`` is the study's task section
(generated from the task's parameter dataclass), ``[model]`` a model generated from the fields of
:class:`~genlab.models.ArchSpec` except ``out_dim`` (set from the task). Every failure is one
line ``"<file>: <dotted key>: <message>"``, as for studies.

Budget: a run of ``n`` workers does rounds of ``tau * batch_size * n`` samples while a whole
one fits in ``samples``, so each worker takes ``samples // (batch_size * n)`` local steps at
most; at least ``tau`` of them (one round) are required.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from genlab.settings import DTYPES
from genlab.study._schema import (
    _CONFIG,
    StudyConfigError,
    _dataclass_fields,
    _from_validation,
    _from_value_error,
    _Invalid,
    _model_from_fields,
    _resolve_section,
    _unknown_key,
)

METHODS = ("easgd", "lsgd", "local_sgd", "data_parallel")
_Fraction = Annotated[float, Field(ge=0, le=1)]
_Count = Annotated[int, Field(ge=1)]


class ConfigError(StudyConfigError):
    """A bad train-parallel config; ``str(error)`` is one line ``"<file>: <key>: <message>"``
    naming the key (``parallel.lr``, ``task.name``), as for a study config."""


class ParallelSettings(BaseModel):
    """``[parallel]``: the optimizer, its hyperparameters, the budget and where workers run.

    Attributes:
        method: "easgd", "lsgd" (Leader SGD), "local_sgd" or "data_parallel".
        lr: SGD step size of every local step (> 0).
        batch_size: minibatch per worker and local step.
        samples: the budget: gradient samples over all workers and rounds.
        tau: local steps per round (one exchange per round).
        alpha: EASGD's elastic pull in [0, 1]; mode: EASGD "sync" or "async".
        pull_local, pull_global: LSGD's pulls to the group and global leaders, in [0, 1].
        group_size: LSGD workers per group (0: one group).
        loss: "mse", "cross_entropy", "logistic", or "auto" (from the task's kind and outputs).
        width: hidden width of the network; seed: init and batch seed.
        backend: "gloo", "nccl" or "auto"; device: "cpu" or "cuda"; dtype: parameter dtype.
        measurements: rounds (evenly spaced, the last always) on which the sharpness is measured.
        sharpness_samples: training points of the Hessian whose top eigenvalue is the sharpness.
        threads: torch threads per worker.
    """

    model_config = _CONFIG
    method: Literal[METHODS] = "easgd"  # type: ignore[valid-type]
    lr: Annotated[float, Field(gt=0)] = 0.05
    batch_size: _Count = 32
    samples: _Count = 32000
    tau: _Count = 4
    alpha: _Fraction = 0.1
    mode: Literal["sync", "async"] = "sync"
    pull_local: _Fraction = 0.1
    pull_global: _Fraction = 0.1
    group_size: Annotated[int, Field(ge=0)] = 0
    loss: Literal["auto", "mse", "cross_entropy", "logistic"] = "auto"
    width: _Count = 128
    seed: Annotated[int, Field(ge=0)] = 0
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    device: Literal["cpu", "cuda"] = "cpu"
    dtype: Literal[DTYPES] = "float32"  # type: ignore[valid-type]
    measurements: _Count = 8
    sharpness_samples: _Count = 256
    threads: _Count = 1


class SweepSettings(BaseModel):
    """``[sweep]``: the runs, every method with every worker count (default: ``parallel.method``
    with 1 worker; ``--nproc`` overrides ``nproc``)."""

    model_config = _CONFIG
    method: Annotated[list[Literal[METHODS]], Field(min_length=1)] | None = None  # type: ignore[valid-type]
    nproc: Annotated[list[_Count], Field(min_length=1)] = [1]


class _ParallelFile(BaseModel):
    model_config = _CONFIG
    name: str = "train_parallel"
    description: str = ""
    task: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    parallel: ParallelSettings = Field(default_factory=ParallelSettings)
    sweep: SweepSettings = Field(default_factory=SweepSettings)


def parse_config(data: Any, *, nproc: int | None = None, source: str = "<config>") -> dict[str, Any]:
    """Validate a train-parallel config (the parsed TOML) and resolve it: defaults filled, sweep expanded.

    Returns:
        ``{"name", "description", "task", "model", "parallel", "runs"}``: ``task`` and ``model``
        as written (``task.seed`` filled in), ``parallel`` with every default, ``runs`` the list
        of ``(method, nproc)`` pairs to run (``nproc`` overrides the sweep's worker counts).

    Raises:
        ConfigError: one line naming the offending key.
    """
    try:
        return _resolve(data, nproc)
    except _Invalid as exc:
        raise ConfigError(source, exc.key, exc.message) from None


def _resolve(data: Any, nproc: int | None) -> dict[str, Any]:
    try:
        top = _ParallelFile.model_validate(data)
    except ValidationError as exc:
        raise _from_validation(exc, _ParallelFile) from None
    par = top.parallel
    task = _check_task(top.task)
    _check_model(top.model)
    counts = [nproc] if nproc is not None else top.sweep.nproc
    for n in counts:
        if par.samples // (par.batch_size * n) < par.tau:
            raise _Invalid("parallel.samples", f"{par.samples} gives fewer than tau = {par.tau} steps per worker "
                                               f"with {n} workers of batch {par.batch_size}")
    _check_batch_fits(task, par.batch_size)
    methods = top.sweep.method or [par.method]
    return {"name": top.name, "description": top.description, "task": task, "model": top.model,
            "parallel": par.model_dump(), "runs": [(m, n) for m in methods for n in counts]}


def _check_task(raw: dict[str, Any]) -> dict[str, Any]:
    """``[task]`` validated as a study's; returned as written with ``seed`` (default 0) last."""
    from genlab.tasks import TASKS

    name = raw.get("name")
    if name is None:
        raise _Invalid("task.name", f"is required; valid tasks: {', '.join(TASKS)}")
    if not isinstance(name, str):
        raise _Invalid("task.name", f"must be a string; got {name!r}")
    if name not in TASKS:
        raise _unknown_key("task.name", name, tuple(TASKS), what="task")
    _resolve_section("task", dict(raw), TASKS[name])
    task = dict(raw)
    seed = task.pop("seed", 0)
    return {**task, "seed": seed}


@functools.lru_cache(maxsize=1)
def _model_section() -> type[BaseModel]:
    """The pydantic model of ``[model]``: ArchSpec's fields but ``out_dim``."""
    from genlab.models import ArchSpec

    return _model_from_fields("model", [f for f in _dataclass_fields(ArchSpec) if f[0] != "out_dim"])


def _check_model(raw: dict[str, Any]) -> None:
    from genlab.models import ArchSpec

    if "out_dim" in raw:
        raise _Invalid("model.out_dim", "is set from the task; remove it")
    model = _model_section()
    try:
        values = model.model_validate(raw).model_dump(by_alias=True)
    except ValidationError as exc:
        raise _from_validation(exc, model, "model") from None
    try:
        ArchSpec(**values)
    except (ValueError, TypeError) as exc:
        raise _from_value_error("model", exc) from None


def _check_batch_fits(task: dict[str, Any], batch_size: int) -> None:
    """A worker's minibatch is drawn without replacement from the training set: it must fit."""
    from genlab.tasks import TaskError, make_task

    params = {k: v for k, v in task.items() if k not in ("name", "seed")}
    try:
        n_train = make_task(task["name"], seed=task["seed"], **params).x_train.shape[0]
    except TaskError as exc:
        raise _Invalid("task", str(exc)) from None
    if batch_size > n_train:
        raise _Invalid("parallel.batch_size", f"{batch_size} exceeds task.n_train {n_train}")
