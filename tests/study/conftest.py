"""Study-runner fixtures: a toy task registry (the runner does not generate data) and a study
file writer."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from genlab.study import _schema
from tests.study.fake_cells import COUNTER_ENV


class ToyTaskError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class ToyParams:
    """Parameters of the toy task: validated like genlab.tasks' parameter dataclasses."""

    n_train: int = 32
    n_test: int = 64
    dim: int = 4
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.n_train < 1:
            raise ToyTaskError(f"task.n_train must be an int >= 1; got {self.n_train!r}")
        if self.noise < 0:
            raise ToyTaskError(f"task.noise must be a finite float >= 0; got {self.noise!r}")


@dataclass(frozen=True, kw_only=True)
class ToyDeepParams:
    """A task with a ``depth`` parameter, which makes the bare grid key ``depth`` ambiguous."""

    n_train: int = 32
    depth: int = 3


TOY_TASKS = {"toy": ToyParams, "toy_deep": ToyDeepParams}
#: The real registry lookup (genlab.tasks.TASKS), before the autouse fixture replaces it.
REAL_TASK_REGISTRY = _schema._task_registry

BASE: dict[str, Any] = {
    "name": "toy_study",
    "description": "Hypothesis: with a large output scale alpha the network stays in the kernel regime.",
    "quantities": ["test_mse", "ntk_drift", "train_loss"],
    "task": {"name": "toy", "n_train": 16},
    "model": {"depth": 1, "width": 8},
    "train": {"lr": 0.5, "steps": 10},
    "grid": {"alpha": [0.1, 10.0], "width": [8, 16], "seed": [0, 1]},
}


@pytest.fixture(autouse=True)
def toy_tasks(monkeypatch: pytest.MonkeyPatch) -> dict[str, type]:
    monkeypatch.setattr(_schema, "_task_registry", lambda: TOY_TASKS)
    return TOY_TASKS


@pytest.fixture
def counter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder in which the fake cell function records its calls (read with fake_cells.calls)."""
    folder = tmp_path / "calls"
    folder.mkdir()
    monkeypatch.setenv(COUNTER_ENV, str(folder))
    return folder


def study_dict(**changes: Any) -> dict[str, Any]:
    """BASE with top-level keys replaced; a value of None removes the key."""
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


@pytest.fixture
def write_study(tmp_path: Path) -> Callable[..., Path]:
    """write_study(data=None, name="study.toml") -> path of a TOML file holding ``data`` (BASE)."""

    def write(data: dict[str, Any] | None = None, name: str = "study.toml") -> Path:
        path = tmp_path / name
        path.write_text(tomli_w.dumps(BASE if data is None else data), encoding="utf-8")
        return path

    return write
