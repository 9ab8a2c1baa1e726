"""What one study cell produces: a row per quantity (theory beside empirical) and its curves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class QuantityRow:
    """One quantity of one cell. ``theory`` is None where the quantity has no prediction,
    ``empirical`` None where it was not measured (e.g. the run diverged first).
    ``theory_kind`` is the prediction's kind ("value", "upper" or "lower" bound; see
    genlab.quantities.Prediction) and ``theory_spread`` its predicted standard deviation of one
    measurement, where the theory gives one."""

    quantity: str
    theory: float | None
    empirical: float | None
    theory_kind: str = "value"
    theory_spread: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"quantity": self.quantity, "theory": self.theory, "empirical": self.empirical}
        if self.theory_kind != "value":
            data["theory_kind"] = self.theory_kind
        if self.theory_spread is not None:
            data["theory_spread"] = self.theory_spread
        return data

    @property
    def bound(self) -> str | None:
        """For a bound ("upper": empirical <= theory, "lower": empirical >= theory) with both sides
        present: "satisfied" or "violated"; None for a value or a missing side."""
        if self.theory_kind == "value" or self.theory is None or self.empirical is None:
            return None
        held = self.empirical <= self.theory if self.theory_kind == "upper" else self.empirical >= self.theory
        return "satisfied" if held else "violated"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QuantityRow":
        """Records written before kinds and spreads existed read as plain values."""
        return cls(data["quantity"], data["theory"], data["empirical"],
                   data.get("theory_kind", "value"), data.get("theory_spread"))


@dataclass(frozen=True)
class CellOutput:
    """Everything a cell returns to the runner; JSON-serialisable through :meth:`to_dict`.

    Attributes:
        rows: one :class:`QuantityRow` per requested quantity, in the requested order.
        curves: per curve quantity, named columns of equal length, e.g.
            ``{"train_loss_curve": {"step": [...], "theory": [...], "empirical": [...]}}``.
        status: "ok" or "diverged" (training stopped on a NaN/inf or exploding loss).
        info: free-form numbers about the run (parameter count, wall seconds per phase, ...).
        arrays: name -> numpy array kept for views across cells (not JSON: the store writes
            them to ``cells/<id>.npz``, see genlab.study._store.write_cell).
    """

    rows: list[QuantityRow]
    curves: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    status: str = "ok"
    info: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe except ``"arrays"`` (present only when there are some), which the store
        splits off into its own file."""
        data = {
            "rows": [row.to_dict() for row in self.rows],
            "curves": self.curves,
            "status": self.status,
            "info": self.info,
        }
        if self.arrays:
            data["arrays"] = dict(self.arrays)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CellOutput":
        return cls(
            rows=[QuantityRow.from_dict(r) for r in data["rows"]],
            curves=data.get("curves", {}),
            status=data.get("status", "ok"),
            info=data.get("info", {}),
        )
