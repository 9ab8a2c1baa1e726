"""The regime verdict of one cell: does the trained network behave like its kernel?

Rules, in order (``drift`` = the measured ``ntk_drift``; ``mse`` / ``mse_theory`` = the measured
and predicted ``test_mse``; thresholds from the study's ``[regime]`` section):

- ``"diverged"``: the cell's training diverged.
- ``"error"``: the cell function raised (the cell file keeps the traceback).
- ``"n/a"``: ``ntk_drift`` (measured) or ``test_mse`` (either side) is missing.
- ``"kernel"``: ``drift < drift_threshold`` and ``|mse - mse_theory| <= error_tolerance * mse_theory``.
- ``"feature learning"``: ``drift >= drift_threshold`` and ``mse < (1 - error_tolerance) * mse_theory``
  (the network beats its own infinite-width kernel).
- ``"intermediate"``: anything else (e.g. the kernel moved but the net did not beat it, or it did
  not move and still does not match the kernel's error).
"""

from __future__ import annotations

import math
from typing import Any

from genlab.study._output import CellOutput

DEFAULT_DRIFT_THRESHOLD = 0.1
DEFAULT_ERROR_TOLERANCE = 0.1
VERDICTS = ("kernel", "feature learning", "intermediate", "diverged", "error", "n/a")


def _value(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def regime_verdict(
    output: CellOutput | None,
    *,
    status: str | None = None,
    drift_threshold: float = DEFAULT_DRIFT_THRESHOLD,
    error_tolerance: float = DEFAULT_ERROR_TOLERANCE,
) -> str:
    """The verdict of one cell (see the module docstring); ``status`` overrides ``output.status``."""
    status = status or (output.status if output is not None else "error")
    if status in ("diverged", "error"):
        return status
    rows = {row.quantity: row for row in output.rows} if output is not None else {}
    drift = _value(rows["ntk_drift"].empirical) if "ntk_drift" in rows else None
    mse = _value(rows["test_mse"].empirical) if "test_mse" in rows else None
    mse_theory = _value(rows["test_mse"].theory) if "test_mse" in rows else None
    if drift is None or mse is None or mse_theory is None:
        return "n/a"
    if drift < drift_threshold and abs(mse - mse_theory) <= error_tolerance * mse_theory:
        return "kernel"
    if drift >= drift_threshold and mse < (1 - error_tolerance) * mse_theory:
        return "feature learning"
    return "intermediate"
