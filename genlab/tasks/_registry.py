"""The task registry and the one entry point, :func:`make_task`."""

from __future__ import annotations

from typing import Any

from genlab.tasks._real import BreastCancerParams, DigitsParams, MNIST1DParams
from genlab.tasks._synthetic import (
    GaussianMixtureParams,
    LinearRegressionParams,
    LinearSeparableParams,
    SingleIndexParams,
    SparseLinearRegressionParams,
    SparseParityParams,
    TeacherStudentParams,
)
from genlab.tasks._task import Task, TaskError, TaskParams, check_seed

#: Task name -> its parameter class (a frozen keyword-only dataclass with a default for every
#: key, validated on construction; its docstring states the data model and the paper).
TASKS: dict[str, type[TaskParams]] = {
    cls.name: cls
    for cls in (
        TeacherStudentParams,
        LinearRegressionParams,
        SingleIndexParams,
        SparseParityParams,
        GaussianMixtureParams,
        DigitsParams,
        BreastCancerParams,
        MNIST1DParams,
        SparseLinearRegressionParams,  # implicit_bias topic
        LinearSeparableParams,  # implicit_bias topic
    )
}


def task_names() -> list[str]:
    """The registered task names, sorted."""
    return sorted(TASKS)


def task_params(name: str, **params: Any) -> TaskParams:
    """Validate ``params`` for task ``name`` and return its resolved parameter object.

    Raises TaskError for an unknown task (listing the valid ones), an unknown key (listing the
    task's keys) or a bad value (naming ``task.<key>``).
    """
    if not isinstance(name, str) or name not in TASKS:
        raise TaskError(f"unknown task {name!r}; valid tasks: {', '.join(task_names())}")
    cls = TASKS[name]
    valid = cls.keys()
    for key in params:
        if key not in valid:
            raise TaskError(f"unknown key task.{key} for task {name!r}; valid keys: {', '.join(valid)}")
    return cls(**params)


def make_task(name: str, *, seed: int, **params: Any) -> Task:
    """Generate task ``name`` with ``params`` (defaults for the rest) from ``seed``.

    Deterministic in ``(name, seed, params)``: the same call gives bit-identical arrays, another
    seed different data. ``meta["params"]`` holds the resolved parameters, seed included.
    """
    resolved = task_params(name, **params)
    return resolved.generate(seed=check_seed(seed))
