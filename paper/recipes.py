"""Figure and table recipes of the paper: each takes a study's Results and returns a matplotlib
Figure or a :class:`genlab.paper.PaperTable`. ``paper/paper.toml`` names the recipe of each output;
``genlab paper`` calls it and writes the files (recipes never save).

Conventions: measurements are markers with ± one seed standard deviation, theory is a line;
one colour per swept value (``series_colours``), the same in every figure; log axes where the
quantity spans decades; sized for a 3.3 in column (``FULL`` width for two-column figures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from genlab.paper import COLUMN_WIDTH, PaperTable, closed_forms
from genlab.study.analysis import crossover, loglog_slope
from genlab.study.plots import PAPER_RC, errorbar_series, seed_stats, series_colours

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from genlab.study import Results

FULL = 6.8  # text width of a two-column paper, inches


def lazy_vs_rich(results: "Results") -> "Figure":
    """(a) NTK drift and (b) test MSE against the output scale alpha for each width, the NTK
    prediction as a line; (c) the drift against alpha sqrt(width): the widths collapse where the
    lazy/rich crossover scales as alpha* ~ width^-1/2 (Geiger et al. 2020)."""
    import matplotlib.pyplot as plt

    rows = results.rows
    threshold = results.study.regime["drift_threshold"]
    with plt.rc_context(PAPER_RC):
        fig, axes = plt.subplots(1, 3, figsize=(FULL, 2.3), constrained_layout=True)
        ax_drift, ax_mse, ax_collapse = axes
        drift = seed_stats(rows, "ntk_drift", ["width", "alpha"])
        mse = seed_stats(rows, "test_mse", ["width", "alpha"])
        theory = seed_stats(rows, "test_mse", ["width", "alpha"], column="theory")
        colours = series_colours(drift["width"])
        one_theory = theory.groupby("alpha")["mean"].nunique().max() == 1  # the NTK limit does not depend on width
        crossovers = {}
        for width, colour in colours.items():
            d = drift[drift["width"] == width]
            errorbar_series(ax_drift, d["alpha"], d["mean"], d["std"], colour=colour, label=f"width {width}")
            m = mse[mse["width"] == width]
            errorbar_series(ax_mse, m["alpha"], m["mean"], m["std"], colour=colour, label=f"width {width}")
            t = theory[theory["width"] == width]
            if not one_theory:
                ax_mse.plot(t["alpha"], t["mean"], "-", color=colour, lw=1.0, zorder=1)
            a_star = crossovers[width] = crossover(d["alpha"], d["mean"], threshold)
            errorbar_series(ax_collapse, d["alpha"] * np.sqrt(width), d["mean"], d["std"], colour=colour,
                            label=rf"$\alpha^*={a_star:.2g}$" if np.isfinite(a_star) else None)
        for ax in (ax_drift, ax_collapse):
            ax.axhline(threshold, color="0.5", lw=0.8, ls=":", zorder=0)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_ylabel(r"NTK drift $\|\Theta_T-\Theta_0\|_F/\|\Theta_0\|_F$")
        ax_drift.text(ax_drift.get_xlim()[0] * 1.1, threshold * 1.15, "lazy threshold", fontsize=6, color="0.4")
        ax_drift.set_xlabel(r"output scale $\alpha$")
        ax_collapse.set_xlabel(r"$\alpha\sqrt{\mathrm{width}}$")
        ax_mse.set_xscale("log")
        ax_mse.set_xlabel(r"output scale $\alpha$")
        ax_mse.set_ylabel("test MSE")
        if one_theory:
            t = theory[theory["width"] == next(iter(colours))]
            ax_mse.plot(t["alpha"], t["mean"], "-", color="0.2", lw=1.0, zorder=1, label="NTK prediction")
        else:
            ax_mse.plot([], [], "-", color="0.3", label="NTK prediction (lines)")
        ax_drift.legend(loc="lower left")
        ax_mse.legend(loc="best")
        found = {w: a for w, a in crossovers.items() if np.isfinite(a)}
        title = "crossover"
        if len(found) >= 2:
            title += rf" ($\alpha^*\propto$ width$^{{{loglog_slope(list(found), list(found.values())):.2f}}}$)"
        ax_collapse.legend(loc="upper right", title=title, title_fontsize=6.5)
        for ax, letter in zip(axes, "abc"):
            ax.set_title(f"({letter})", loc="left")
    return fig


def width_convergence(results: "Results") -> "Figure":
    """Distances between the trained network and its infinite-width kernel against width,
    log-log, with the fitted exponent of each; the O(width^-1/2) bound (Lee et al. 2019) and the
    width^-1 rate (Dyer & Gur-Ari 2020) as reference lines through the first point."""
    import matplotlib.pyplot as plt

    rows = results.rows
    series = {
        "ntk_drift": "NTK drift",
        "weight_change": "relative weight change",
        "linearization_distance": "distance to linearized net",
    }
    colours = dict(zip(series, ["#1b9e77", "#d95f02", "#7570b3"]))
    with plt.rc_context(PAPER_RC):
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.6), constrained_layout=True)
        first = None
        for quantity, label in series.items():
            if quantity not in set(rows["quantity"]):
                continue
            s = seed_stats(rows, quantity, ["width"])
            slope = loglog_slope(s["width"], s["mean"])
            errorbar_series(ax, s["width"], s["mean"], s["std"], colour=colours[quantity],
                            label=f"{label} (slope {slope:.2f})")
            first = (s["width"].iloc[0], s["mean"].max()) if first is None else (first[0], max(first[1], s["mean"].max()))
        mse = seed_stats(rows, "test_mse", ["width"])
        theory = seed_stats(rows, "test_mse", ["width"], column="theory")
        gap = np.abs(mse["mean"].to_numpy() - theory["mean"].to_numpy()) / theory["mean"].to_numpy()
        slope = loglog_slope(mse["width"], gap)
        errorbar_series(ax, mse["width"], gap, mse["std"].to_numpy() / theory["mean"].to_numpy(), colour="#e7298a",
                        label=f"|test MSE - NTK|/NTK (slope {slope:.2f})", marker="s")
        widths = np.array(sorted(set(rows["width"])), dtype=float)
        w0, y0 = widths[0], first[1] * 1.5
        ax.plot(widths, y0 * (widths / w0) ** -0.5, "k--", lw=0.9, label=r"$\propto$ width$^{-1/2}$ (bound)")
        ax.plot(widths, y0 * (widths / w0) ** -1.0, "k:", lw=0.9, label=r"$\propto$ width$^{-1}$")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("width (hidden units)")
        ax.set_ylabel("relative distance to the NTK limit")
        ax.legend(loc="lower left", fontsize=5.5)
    return fig


def edge_of_stability(results: "Results") -> "Figure":
    """Sharpness (top Hessian eigenvalue of the training loss) along full-batch GD for each
    learning rate, measured as markers, with its 2/lr threshold as a line of the same colour."""
    import matplotlib.pyplot as plt

    cells = results.cells.set_index("cell")
    lrs = {ident: float(cells.loc[ident, "lr"]) for ident in results.curves}
    colours = series_colours(lrs.values(), cmap="plasma")
    with plt.rc_context(PAPER_RC):
        fig, ax = plt.subplots(figsize=(COLUMN_WIDTH, 2.5), constrained_layout=True)
        for ident, curves in sorted(results.curves.items(), key=lambda kv: lrs[kv[0]]):
            data = curves.get("sharpness")
            if not data:
                continue
            lr, colour = lrs[ident], colours[lrs[ident]]
            x_key = next(k for k in data if k.startswith("empirical_"))
            ax.plot(data[x_key], data["empirical"], "o", ms=2.2, color=colour, label=f"lr {lr:g}")
            ax.axhline(2 / lr, color=colour, lw=1.0)
        low, high = ax.get_ylim()
        if low > 0 and high / low > 10:  # log only when the values span a decade or more
            from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

            ax.set_yscale("log")
            ax.yaxis.set_major_locator(FixedLocator(sorted(2 / lr for lr in set(lrs.values()))))  # ticks at 2/lr
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("GD step")
        ax.set_ylabel(r"sharpness $\lambda_{\max}(\nabla^2 L)$")
        ax.plot([], [], "-", color="0.3", label=r"$2/\eta$ (theory)")
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=6, handletextpad=0.3,
                  columnspacing=1.0)
    return fig


def theory_table(results: "Results") -> PaperTable:
    """The study's side-by-side table (mean ± std over seeds) with the theory's closed forms in
    the caption."""
    table = results.table()
    caption = f"{results.study.name}: theory beside measurement. {results.note()}".strip()
    return PaperTable(table, caption, closed_forms(list(dict.fromkeys(table["quantity"]))))


def edge_of_stability_table(results: "Results") -> PaperTable:
    """Late-phase and maximal sharpness and the step at which 2/lr is reached, per learning rate."""
    table = results.table()
    table = table[table["quantity"].isin(["sharpness_late", "sharpness_max", "steps_to_eos"])].drop(columns=["regime"])
    caption = ("Edge of stability: full-batch GD on digits (erf MLP, width 100); late-phase and maximal "
               "sharpness against the threshold at which GD on a quadratic turns unstable (Cohen et al. 2021).")
    return PaperTable(table.reset_index(drop=True), caption, closed_forms(list(dict.fromkeys(table["quantity"]))))


def width_convergence_slopes(results: "Results") -> PaperTable:
    """Fitted exponent p of each distance ~ width^p (least squares in log-log over the seed
    means), beside the bound of Lee et al. 2019 (-1/2) and the rate expected under GD (-1)."""
    import pandas as pd

    rows = results.rows
    out = []
    for quantity in ("ntk_drift", "weight_change", "linearization_distance"):
        s = seed_stats(rows, quantity, ["width"])
        out.append({"quantity": quantity, "widths": f"{s['width'].min()}-{s['width'].max()}",
                    "measured exponent": f"{loglog_slope(s['width'], s['mean']):.3f}",
                    "bound (Lee et al. 2019)": "-0.5", "expected (Dyer & Gur-Ari 2020)": "-1"})
    caption = ("Width convergence: exponent $p$ of a least-squares fit of $\\log$ distance against "
               "$\\log$ width over the means of the seeds.")
    return PaperTable(pd.DataFrame(out), caption)
