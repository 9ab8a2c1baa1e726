"""What one study cell produces: a row per quantity (theory beside empirical) and its curves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class QuantityRow:
    """One quantity of one cell. ``theory`` is None where the quantity has no prediction,
    ``empirical`` None where it was not measured (e.g. the run diverged first)."""

    quantity: str
    theory: float | None
    empirical: float | None


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
            "rows": [{"quantity": r.quantity, "theory": r.theory, "empirical": r.empirical} for r in self.rows],
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
            rows=[QuantityRow(r["quantity"], r["theory"], r["empirical"]) for r in data["rows"]],
            curves=data.get("curves", {}),
            status=data.get("status", "ok"),
            info=data.get("info", {}),
        )
