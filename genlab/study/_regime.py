"""The regime verdict of one cell: does the trained network behave like its kernel?

Rules, in order (``drift`` = the measured ``ntk_drift``; ``mse`` / ``mse_theory`` = the measured
and predicted ``test_mse``; thresholds from the study's ``[regime]`` section):

- ``"diverged"``: the cell's training diverged.
- ``"error"``: the cell function raised (the cell file keeps the traceback).
- ``"n/a"``: ``ntk_drift`` (measured) or ``test_mse`` (either side) is missing.
- ``"kernel"``: ``drift < drift_threshold`` and ``|mse - mse_theory| <= tolerance``.
- ``"feature learning"``: ``drift >= drift_threshold`` and ``mse < mse_theory - tolerance``
  (the network beats its own infinite-width kernel by more than the noise).
- ``"intermediate"``: anything else (e.g. the kernel moved but the net did not beat it, or it did
  not move and still does not match the kernel's error).

``tolerance = max(error_tolerance * mse_theory, SPREAD_Z * spread)``, ``spread`` the predicted
standard deviation of one seed's test MSE (the ``test_mse`` row's ``theory_spread``). For a
centred network (output scale alpha) the prediction is deterministic, there is no spread and the
tolerance is the relative one. For an uncentred network the prediction is an expectation over
the random initial function f0 ~ GP(0, NNGP) (Lee et al. 2019) and one seed is one draw: the
measured MSE is a Gaussian quadratic form in f0 whose standard deviation the theory gives exactly
(genlab.theory.kernel_regime.test_mse). In the exact infinite-width linearized model (depth-1
erf and gelu networks, n = 32, seven settings of input dimension, test-set size and w_std,
4000 draws of f0 each) that spread is 17-44 % of the mean, and the relative rule alone calls
only 18-47 % of these exact kernel-regime draws "kernel". ``SPREAD_Z = 2`` calls 95-96 % of them
"kernel" (z = 1.5: 88-90 %, z = 3: 99 %), and at most 1 % of them "feature learning" (beating
the kernel by more than two spreads): the quadratic form is right-skewed, so its lower tail beyond
two standard deviations is thinner than a Gaussian's 2.3 % (tests/study/test_regime.py checks
one setting and 12 seeds of a width-4096 network).
"""

from __future__ import annotations

import math
from typing import Any

from genlab.study._output import CellOutput

DEFAULT_DRIFT_THRESHOLD = 0.1
DEFAULT_ERROR_TOLERANCE = 0.1
#: Predicted standard deviations of one seed's test MSE within which it still matches the kernel.
SPREAD_Z = 2.0
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
    spread = _value(rows["test_mse"].theory_spread) or 0.0
    tolerance = max(error_tolerance * mse_theory, SPREAD_Z * spread)
    if drift < drift_threshold and abs(mse - mse_theory) <= tolerance:
        return "kernel"
    if drift >= drift_threshold and mse < mse_theory - tolerance:
        return "feature learning"
    return "intermediate"
