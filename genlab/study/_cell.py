"""One study cell: build the task and the network from a resolved config, train, and evaluate
every requested quantity on both sides (theory and empirical), paired by name."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from genlab.empirical import EmpiricalContext, resolve_device, train
from genlab.models import ArchSpec
from genlab.quantities import Curve
from genlab.settings import TrainSettings, torch_dtype
from genlab.study._output import CellOutput, QuantityRow
from genlab.study._registry import QUANTITIES
from genlab.tasks import Task, make_task
from genlab.theory import TheoryContext

MODEL_EXTRA_KEYS = ("width", "alpha")


def _curve_columns(prefix: str, curve: Curve | None) -> dict[str, list[float]]:
    if curve is None:
        return {}
    return {f"{prefix}_{curve.x_label}": np.asarray(curve.x, float).tolist(), prefix: np.asarray(curve.y, float).tolist()}


def _number(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def build_cell(config: Mapping[str, Any]) -> tuple[Task, ArchSpec, int, float | None, TrainSettings, torch.nn.Module]:
    """The task, spec, width, output scale alpha, training settings and initial network of a
    resolved cell config: ``ArchSpec(**model).to_torch(width, seed=train.seed, alpha=alpha)`` on
    ``make_task(task.name, seed=task.seed, **params)``. Deterministic: views across cells rebuild
    a cell's network with it and load stored parameters into it."""
    task_config = dict(config["task"])
    task = make_task(task_config.pop("name"), seed=task_config.pop("seed", 0), **task_config)
    model = dict(config["model"])
    width, alpha = model.pop("width"), model.pop("alpha", None)
    spec = ArchSpec(**model)
    settings = TrainSettings(**config["train"])
    module = spec.to_torch(width, input_shape=task.input_shape, seed=settings.seed, alpha=alpha, dtype=torch_dtype(settings.dtype))
    return task, spec, width, alpha, settings, module.to(resolve_device(settings.device))


def run_cell(config: Mapping[str, Any], *, progress: Callable[[int, int], None] | None = None) -> CellOutput:
    """Run one resolved cell config ``{"task", "model", "train", "quantities", ...}``.

    The network is ``ArchSpec(**model).to_torch(width, seed=train.seed, alpha=alpha)``; the
    task is ``make_task(task.name, seed=task.seed, **params)``. Returns one row per quantity:
    the theory prediction (None where theory has none) beside the measurement.
    """
    start = time.perf_counter()
    task, spec, width, alpha, settings, module = build_cell(config)
    names = list(config["quantities"])
    device = next(module.parameters()).device
    module0 = copy.deepcopy(module)
    factories = dict.fromkeys(QUANTITIES[name].hook_factory() for name in names)  # one hook per factory
    hooks = [factory(module, task.x_train, task.y_train, settings) for factory in factories if factory is not None]
    run = train(module, task.x_train, task.y_train, settings, x_test=task.x_test, y_test=task.y_test, hooks=hooks, progress=progress)
    kind = task.meta["kind"]
    empirical_ctx = EmpiricalContext(task.x_train, task.y_train, task.x_test, task.y_test, kind, settings, module0, module, run,
                                     meta=dict(task.meta))
    theory_ctx = TheoryContext(
        spec=spec, width=width, centered=alpha is not None, settings=settings, x_train=task.x_train, y_train=task.y_train,
        x_test=task.x_test, y_test=task.y_test, kind=kind, steps=np.asarray(settings.measured_steps), meta=dict(task.meta),
    )
    train_seconds = time.perf_counter() - start

    rows, curves, arrays = [], {}, {}
    theory_seconds = 0.0
    for name in names:
        spec_q = QUANTITIES[name]
        tick = time.perf_counter()
        theory_fn = spec_q.theory(name)
        prediction = theory_fn(theory_ctx) if theory_fn is not None else None
        theory_seconds += time.perf_counter() - tick
        measurement = spec_q.empirical(name)(empirical_ctx)
        rows.append(QuantityRow(name, _number(prediction.value) if prediction else None, _number(measurement.value),
                                prediction.kind if prediction else "value", _number(prediction.spread) if prediction else None))
        columns = {**_curve_columns("empirical", measurement.curve), **_curve_columns("theory", prediction.curve if prediction else None)}
        if columns:
            curves[name] = columns
        arrays.update(measurement.arrays or {})
    return CellOutput(
        rows=rows,
        curves=curves,
        arrays=arrays,
        status="diverged" if run.diverged else "ok",
        info={
            "parameters": sum(p.numel() for p in module.parameters() if p.requires_grad),
            "final_step": run.final_step,
            "train_seconds": round(run.wall_seconds, 3),
            "setup_and_train_seconds": round(train_seconds, 3),
            "theory_seconds": round(theory_seconds, 3),
            "measure_seconds": round(time.perf_counter() - start - train_seconds - theory_seconds, 3),
            "device": str(device),
        },
    )
