"""The two structures the pairing is built on: a theory :class:`Prediction` and an empirical
:class:`Measurement` of the same named quantity, each a scalar with an optional curve.

``theory/X.py`` returns Predictions and ``empirical/X.py`` Measurements with the same names;
the study runner pairs them by name (genlab.study._registry).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Training points (the first PROBE_SIZE) on which kernels are measured and predicted (NTK
#: drift, kernel-target alignment, feature CKA): one constant, so that both sides see the same.
PROBE_SIZE = 256


@dataclass(frozen=True, eq=False)
class Curve:
    """``y`` against ``x`` (e.g. a loss against the training step)."""

    x: np.ndarray
    y: np.ndarray
    x_label: str = "step"


@dataclass(frozen=True, eq=False)
class Prediction:
    """What theory predicts for ``name``; ``value`` None where it makes no prediction here."""

    name: str
    value: float | None
    curve: Curve | None = None


@dataclass(frozen=True, eq=False)
class Measurement:
    """What the trained network did for ``name``; ``value`` None if it could not be measured.

    ``arrays`` are raw data the cell keeps for views across cells (e.g. the parameter
    trajectory, projected onto a plane shared by several optimizers); the study store writes
    them to ``cells/<id>.npz``."""

    name: str
    value: float | None
    curve: Curve | None = None
    arrays: dict[str, np.ndarray] | None = None
