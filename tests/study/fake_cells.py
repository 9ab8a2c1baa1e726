"""Cell functions for the runner tests: deterministic rows from the config, no torch.

Every call leaves a file in the folder named by the environment variable ``GENLAB_TEST_CALLS``
(when set), so that tests count the computed cells across worker processes. Top-level
functions, so that worker processes can unpickle them.

Values: ``train_loss`` and every other quantity: theory = width, empirical = width + seed.
``ntk_drift`` (empirical) and ``test_mse`` follow lazy training (Chizat et al. 2019): with
alpha >= 1 the kernel barely moves and the net matches its kernel ("kernel"), with alpha < 1
it moves and the net beats its kernel ("feature learning"). lr > 100 diverges; width 13 raises.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any

from genlab.study import CellOutput, QuantityRow

COUNTER_ENV = "GENLAB_TEST_CALLS"


def _record_call(config: dict[str, Any]) -> None:
    folder = os.environ.get(COUNTER_ENV)
    if folder:
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
        (Path(folder) / f"{digest}-{os.getpid()}-{uuid.uuid4().hex}.call").touch()


def calls(folder: Path) -> int:
    """Number of cell-function calls recorded in ``folder``."""
    return len(list(Path(folder).glob("*.call")))


def fake_cell(config: dict[str, Any]) -> CellOutput:
    _record_call(config)
    width = config["model"]["width"]
    seed = config["train"]["seed"]
    alpha = config["model"]["alpha"] or 1.0
    if width == 13:
        raise RuntimeError("width 13 is unlucky")
    if config["train"]["lr"] > 100:
        return CellOutput(rows=[QuantityRow(q, float(width), None) for q in config["quantities"]], status="diverged")
    lazy = alpha >= 1
    rows = []
    for quantity in config["quantities"]:
        if quantity == "ntk_drift":
            rows.append(QuantityRow(quantity, 1 / math.sqrt(width), 0.01 if lazy else 0.5))
        elif quantity == "test_mse":
            rows.append(QuantityRow(quantity, 1.0, 1.0 + 0.01 * seed if lazy else 0.5 + 0.01 * seed))
        elif quantity == "test_error":
            rows.append(QuantityRow(quantity, None, 0.25))
        else:
            rows.append(QuantityRow(quantity, float(width), float(width + seed)))
    curves = {"train_loss_curve": {"step": [0, 1, 2], "theory": [1.0, 0.5, 0.25], "empirical": [1.0, 0.5, 0.2 + seed]}}
    return CellOutput(rows=rows, curves=curves, info={"width": width})


def not_a_cell_output(config: dict[str, Any]) -> dict[str, Any]:
    return {"rows": []}


def thread_env_cell(config: dict[str, Any]) -> CellOutput:
    """Reports the OpenMP thread limit the worker runs under (in ``info``)."""
    return CellOutput(rows=[QuantityRow(q, 1.0, 1.0) for q in config["quantities"]],
                      info={"omp_threads": os.environ.get("OMP_NUM_THREADS"), "pid": os.getpid()})


def stepping_cell(config: dict[str, Any], *, progress: Any = None) -> CellOutput:
    """``fake_cell`` that also reports three training steps through ``progress``."""
    for step in (0, 5, 10):
        progress(step, 10)
    return fake_cell(config)


def curve_cell(config: dict[str, Any]) -> CellOutput:
    """``fake_cell`` plus a measured curve of train_loss and its theory line."""
    output = fake_cell(config)
    width = float(config["model"]["width"])
    curves = {"train_loss": {"empirical_step": [0.0, 5.0, 10.0], "empirical": [width, width / 2, width / 4],
                             "theory_step": [0.0, 10.0], "theory": [width, width / 4]}}
    return CellOutput(rows=output.rows, curves=curves, status=output.status, info=output.info)
