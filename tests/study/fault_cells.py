"""Cell functions that fail in each way a cell can fail, for the executor and failure tests.

Top-level functions (worker processes and Ray workers unpickle them by reference). They count
their calls with ``fake_cells._record_call`` (once per attempt) (folder in ``GENLAB_TEST_CALLS``) and fail on the
cells of width 16 (``VICTIM_WIDTH``) only; every other cell is ``fake_cell``.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

from genlab.study import CellOutput
from tests.study.fake_cells import COUNTER_ENV, _record_call, fake_cell

VICTIM_WIDTH = 16
SLEEP_ENV = "GENLAB_TEST_SLEEP"


def _victim(config: dict[str, Any]) -> bool:
    return config["model"]["width"] == VICTIM_WIDTH


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def killed_once_cell(config: dict[str, Any]) -> CellOutput:
    """The victim's worker process is SIGKILLed on the first attempt (one marker file per
    victim config in the calls folder), and succeeds when retried."""
    if _victim(config):
        marker = Path(os.environ[COUNTER_ENV]) / f"killed-{config['model']['alpha']}-{config['train']['seed']}.marker"
        if not marker.exists():
            marker.touch()
            _record_call(config)
            time.sleep(0.2)  # mid-run: the worker has started the cell
            _kill_self()
    return fake_cell(config)


def always_killed_cell(config: dict[str, Any]) -> CellOutput:
    """The victim's worker process dies on every attempt."""
    if _victim(config):
        _record_call(config)
        _kill_self()
    return fake_cell(config)


def memory_error_cell(config: dict[str, Any]) -> CellOutput:
    """The victim runs out of memory (a real allocation that cannot succeed)."""
    if _victim(config):
        bytearray(1 << 62)  # 4 EiB: MemoryError from the allocator, on any machine
    return fake_cell(config)


def nan_cell(config: dict[str, Any]) -> CellOutput:
    """The victim's training diverges: the cell reports status "diverged" with a NaN loss."""
    output = fake_cell(config)
    if _victim(config):
        rows = [type(row)(row.quantity, row.theory, float("nan")) for row in output.rows]
        return CellOutput(rows=rows, curves={}, status="diverged")
    return output


def raising_cell(config: dict[str, Any]) -> CellOutput:
    """The victim raises an ordinary exception."""
    if _victim(config):
        raise FloatingPointError("loss became inf at step 3")
    return fake_cell(config)


def sleepy_cell(config: dict[str, Any]) -> CellOutput:
    """``fake_cell`` after sleeping ``GENLAB_TEST_SLEEP`` seconds (default 0.3)."""
    time.sleep(float(os.environ.get(SLEEP_ENV, "0.3")))
    return fake_cell(config)
