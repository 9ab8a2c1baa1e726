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


#: What a prediction's value is: the predicted value itself, or a bound the measurement should
#: respect (``"upper"``: measured <= value; ``"lower"``: measured >= value).
PREDICTION_KINDS = ("value", "upper", "lower")


@dataclass(frozen=True, eq=False)
class Prediction:
    """What theory predicts for ``name``; ``value`` None where it makes no prediction here.

    ``kind`` says whether ``value`` is the predicted value or an upper/lower bound on the
    measurement (see :data:`PREDICTION_KINDS`); a bound is checked as satisfied or violated,
    never turned into a gap. ``spread`` is the predicted standard deviation of one measurement
    around ``value`` where the theory gives one (e.g. over the random initial function of an
    uncentred network), None otherwise.
    """

    name: str
    value: float | None
    curve: Curve | None = None
    kind: str = "value"
    spread: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in PREDICTION_KINDS:
            raise ValueError(f"kind must be one of {', '.join(map(repr, PREDICTION_KINDS))}; got {self.kind!r}")


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
