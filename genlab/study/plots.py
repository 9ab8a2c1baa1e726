"""Figures of study results: theory as lines (dashed where it is a bound), measurements as markers.

Plot functions take a :class:`~genlab.study.Results` and return a matplotlib Figure; they never
save. ``genlab plot RUN_DIR`` (and paper recipes) write the files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from genlab.study._study import Results

#: Quantities whose y axis spans decades (log scale).
LOG_QUANTITIES = ("train_loss_curve", "test_loss_curve", "ntk_drift", "sharpness", "spectral_density")
#: Curves with more points than this are drawn as lines (a density on a fine grid), not markers.
DENSE_CURVE = 100
#: A log-scale density is shown down to this fraction of its peak (its Gaussian tails underflow).
DENSITY_FLOOR = 1e-7


def curve_quantities(results: "Results") -> list[str]:
    """Names of the quantities that recorded a curve in at least one cell, in study order."""
    present = {name for curves in results.curves.values() for name in curves}
    return [q for q in results.study.quantities if q in present]


def _label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "cell"


def plot_curves(results: "Results", quantity: str, *, ax: Any = None) -> "Figure":
    """One quantity's curves for every cell: the measurement as markers, the prediction as a line
    of the same colour (e.g. sharpness against step with its 2/lr line), dashed where the
    prediction is a bound rather than a value (e.g. that line under SGD)."""
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
    any_theory = any_bound = False
    for i, (ident, curves) in enumerate(results.curves.items()):
        data = curves.get(quantity)
        if not data:
            continue
        colour = colours[i % len(colours)]
        label = _label({p: cells.loc[ident, p] for p in params})
        x_key = next((k for k in data if k.startswith("empirical_")), None)
        if x_key is not None:
            style = {"ls": "-", "lw": 1.0} if len(data[x_key]) > DENSE_CURVE else {"ls": "", "marker": "o", "ms": 3}
            ax.plot(data[x_key], data["empirical"], color=colour, label=label, **style)
        t_key = next((k for k in data if k.startswith("theory_")), None)
        if t_key is not None:
            bound = results.theory_kind(ident, quantity) != "value"
            any_theory, any_bound = any_theory or not bound, any_bound or bound
            ax.plot(data[t_key], data["theory"], "--" if bound else "-", lw=1.2, color=colour)
    x_label = (x_key or t_key or "x_step").split("_", 1)[1]
    ax.set_xlabel(x_label)
    ax.set_ylabel(quantity.replace("_curve", "").replace("_", " "))
    if quantity in LOG_QUANTITIES:
        ax.set_yscale("log")
    if quantity == "spectral_density":
        ax.set_ylim(bottom=DENSITY_FLOOR * max(max(c[quantity]["empirical"]) for c in results.curves.values() if quantity in c))
    theory = ["lines: theory"] * any_theory + ["dashed: bound"] * any_bound
    legend = ", ".join(["markers: measured", *theory]) if theory else "measured"
    ax.set_title(f"{results.study.name}: {quantity} ({legend})", fontsize=8)
    ax.legend(fontsize=6, frameon=False)
    return fig


# ---------------------------------------------------------------------------------------------
# Paper figures (paper/recipes.py): column-width style, one colour per series, seed error bars.

#: Matplotlib settings for figures read at a paper's column width (~3.3 in): 8 pt text, thin lines.
PAPER_RC = {
    "font.size": 8, "axes.labelsize": 8, "axes.titlesize": 8, "legend.fontsize": 6.5, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "lines.linewidth": 1.2, "lines.markersize": 4, "axes.linewidth": 0.6,
    "legend.frameon": False, "savefig.bbox": "tight", "savefig.pad_inches": 0.02, "pdf.fonttype": 42,
}


def series_colours(values: Any, cmap: str = "viridis") -> dict[Any, Any]:
    """One colour per distinct value, in sorted order along ``cmap`` (dark to light), so that a
    sweep (widths, learning rates) keeps the same colours in every figure."""
    import matplotlib

    distinct = sorted(set(values))
    colormap = matplotlib.colormaps[cmap]
    n = len(distinct)
    return {v: colormap(0.1 + 0.75 * (i / max(n - 1, 1))) for i, v in enumerate(distinct)}


def seed_stats(rows: Any, quantity: str, by: list[str], column: str = "empirical") -> Any:
    """Mean, sample std (ddof 1; 0 for one seed) and count of ``column`` for ``quantity`` in the
    results rows, grouped by ``by`` (the swept keys kept; the others, e.g. seed, pooled)."""
    import pandas as pd

    part = rows[rows["quantity"] == quantity].copy()
    part[column] = pd.to_numeric(part[column], errors="coerce")
    for key in by:  # swept values come back as objects from mixed-type rows: numbers when they are
        try:
            part[key] = pd.to_numeric(part[key])
        except (TypeError, ValueError):
            pass
    grouped = part.groupby(by, sort=True)[column]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    out["std"] = out["std"].fillna(0.0)
    return out


def errorbar_series(ax: Any, x: Any, mean: Any, std: Any, *, colour: Any, label: str | None = None,
                    marker: str = "o") -> None:
    """Measurements as markers with seed error bars (± one std), joined by a faint line."""
    ax.errorbar(x, mean, yerr=std, fmt=marker, ms=3.5, color=colour, ecolor=colour, elinewidth=0.8, capsize=1.5,
                label=label, zorder=3)
    ax.plot(x, mean, "-", lw=0.6, color=colour, alpha=0.4, zorder=2)
