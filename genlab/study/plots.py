"""Figures of study results: theory as lines, measurements as markers.

Plot functions take a :class:`~genlab.study.Results` and return a matplotlib Figure; they never
save. ``genlab plot RUN_DIR`` (and paper recipes) write the files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from genlab.study._study import Results

#: Quantities whose y axis spans decades (log scale).
LOG_QUANTITIES = ("train_loss_curve", "test_loss_curve", "ntk_drift", "sharpness")


def curve_quantities(results: "Results") -> list[str]:
    """Names of the quantities that recorded a curve in at least one cell, in study order."""
    present = {name for curves in results.curves.values() for name in curves}
    return [q for q in results.study.quantities if q in present]


def _label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "cell"


def plot_curves(results: "Results", quantity: str, *, ax: Any = None) -> "Figure":
    """One quantity's curves for every cell: the measurement as markers, the prediction as a line
    of the same colour (e.g. sharpness against step with its 2/lr line)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    if quantity not in curve_quantities(results):
        raise ValueError(f"quantity must be one with curves in this run ({', '.join(curve_quantities(results)) or 'none'}); got {quantity!r}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.8, 3.4), constrained_layout=True)
    else:
        fig = ax.figure
    cells = results.cells.set_index("cell")
    params = [c for c in cells.columns if c not in ("status", "cached", "wall_s")]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    x_key = t_key = None
    for i, (ident, curves) in enumerate(results.curves.items()):
        data = curves.get(quantity)
        if not data:
            continue
        colour = colours[i % len(colours)]
        label = _label({p: cells.loc[ident, p] for p in params})
        x_key = next((k for k in data if k.startswith("empirical_")), None)
        if x_key is not None:
            ax.plot(data[x_key], data["empirical"], "o", ms=3, color=colour, label=label)
        t_key = next((k for k in data if k.startswith("theory_")), None)
        if t_key is not None:
            ax.plot(data[t_key], data["theory"], "-", lw=1.2, color=colour)
    x_label = (x_key or t_key or "x_step").split("_", 1)[1]
    ax.set_xlabel(x_label)
    ax.set_ylabel(quantity.replace("_curve", "").replace("_", " "))
    if quantity in LOG_QUANTITIES:
        ax.set_yscale("log")
    ax.set_title(f"{results.study.name}: {quantity} (markers: measured, lines: theory)", fontsize=8)
    ax.legend(fontsize=6, frameon=False)
    return fig
