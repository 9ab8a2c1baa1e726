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


# ---------------------------------------------------------------------------------------------
# Implicit bias, generalization and landscape studies.

#: One colour per method of the nn-vs-kernel comparison, the same in its figure and wherever a
#: method reappears (network: the trained net; ntk / nngp: kernels at init; after: the after-kernel).
METHOD_COLOURS = {"network": "#d62728", "ntk": "#1f77b4", "nngp": "#2ca02c", "after": "#9467bd"}


def _column(results: "Results", key: str) -> str:
    """The results column of the grid key ``key`` (``"model.depth"`` -> ``"depth"`` when unique)."""
    return results.study.columns.get(key, key)


def _plain_log_ticks(ax) -> None:
    """Plain numbers on a log y axis spanning less than a decade (matplotlib would print
    "3 x 10^0" on the minor ticks)."""
    from matplotlib.ticker import FuncFormatter

    low, high = ax.get_ylim()
    if low > 0 and high / low < 10:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}"))


def _first_task(results: "Results"):
    """The task of the study's first cell (the studies here share one task across cells)."""
    from genlab.tasks import make_task

    config = dict(results.study.cells[0].config["task"])
    return make_task(config.pop("name"), seed=config.pop("seed", 0), **config)


def diag_linear_bias(results: "Results") -> "Figure":
    """(a) l1 and (b) l2 norm of the diagonal network's solution beta = u*u - v*v against the
    init scale alpha (model.w_std): trained markers, the norms of argmin Q_alpha s.t. X beta = y
    (Woodworth et al. 2020) as a line over a dense alpha grid, and the min-l1 / min-l2
    interpolants' norms as horizontal references (the alpha -> 0 and alpha -> inf limits)."""
    import matplotlib.pyplot as plt

    from genlab.linear import hypentropy_solution, min_l1_solution, min_norm_solution

    rows = results.rows
    alpha = _column(results, "model.w_std")
    task = _first_task(results)
    x = np.asarray(task.x_train, dtype=np.float64)
    y = np.asarray(task.y_train, dtype=np.float64).reshape(-1)
    l1_solution, l2_solution = min_l1_solution(x, y), min_norm_solution(x, y)
    swept = sorted(set(seed_stats(rows, "solution_l1", [alpha])[alpha]))
    dense = np.geomspace(min(swept) / 2, max(swept) * 2, 41)
    q_solutions = [hypentropy_solution(x, y, float(a)) for a in dense]
    norms = {"solution_l1": (1, r"$\|\beta\|_1$"), "solution_l2": (2, r"$\|\beta\|_2$")}
    with plt.rc_context(PAPER_RC):
        fig, axes = plt.subplots(2, 1, figsize=(COLUMN_WIDTH, 3.6), sharex=True, constrained_layout=True)
        for ax, (quantity, (order, label)), letter in zip(axes, norms.items(), "ab"):
            ax.plot(dense, [np.linalg.norm(b, order) for b in q_solutions], "-", color="0.15", lw=1.1,
                    label=r"argmin $Q_\alpha$ (theory)", zorder=1)
            s = seed_stats(rows, quantity, [alpha])
            errorbar_series(ax, s[alpha], s["mean"], s["std"], colour="#d95f02", label="trained (GD)")
            ax.axhline(np.linalg.norm(l1_solution, order), color="#1b9e77", ls="--", lw=0.9, label=r"min-$\ell_1$ interpolant")
            ax.axhline(np.linalg.norm(l2_solution, order), color="#7570b3", ls=":", lw=1.1, label=r"min-$\ell_2$ interpolant")
            low, high = ax.get_ylim()
            refs = [np.linalg.norm(l1_solution, order), np.linalg.norm(l2_solution, order)]
            pad = 0.05 * (max(high, *refs) - min(low, *refs))  # the references sit inside the axes, not on its edge
            ax.set_ylim(min(low, *refs) - pad, max(high, *refs) + pad)
            ax.set_ylabel(label)
            ax.set_title(f"({letter})", loc="left")
        axes[0].legend(loc="center right", fontsize=6)  # the curve runs bottom-left to top-right
        axes[1].set_xscale("log")
        axes[1].set_xlabel(r"init scale $\alpha$ ($u_0 = v_0 = \alpha\mathbf{1}$)")
    return fig


def learning_curves(results: "Results") -> "Figure":
    """Test MSE against the number of samples P, log-log, one panel per depth: the spectral
    theory (Bordelon et al. 2020) as a line through its values at the swept P, ridgeless kernel
    regression as markers (mean ± std over task draws) and the trained network in the kernel
    regime as open markers; at depth 0 (linear kernel of rank d) the double-descent peak at P = d
    (dotted vertical line), where the theory is infinite."""
    import matplotlib.pyplot as plt

    rows = results.rows
    depth, n = _column(results, "model.depth"), "n_train"
    depths = sorted(set(seed_stats(rows, "learning_curve_mse", [depth])[depth]), reverse=True)
    d = int(results.study.cells[0].config["task"]["d"])
    with plt.rc_context(PAPER_RC):
        fig, axes = plt.subplots(1, len(depths), figsize=(COLUMN_WIDTH * (1 if len(depths) == 1 else 2), 2.4),
                                 constrained_layout=True, squeeze=False)
        for ax, depth_value, letter in zip(axes[0], depths, "abcd"):
            kernel = seed_stats(rows[rows[depth] == depth_value], "learning_curve_mse", [n])
            theory = seed_stats(rows[rows[depth] == depth_value], "learning_curve_mse", [n], column="theory")
            finite = np.isfinite(theory["mean"].to_numpy())
            sides = [finite] if int(depth_value) else [finite & (theory[n] < d), finite & (theory[n] > d)]
            for i, side in enumerate(sides):  # at depth 0 the theory diverges at P = d: no line across it
                ax.plot(theory[n][side], theory["mean"][side], "-", color="0.15", lw=1.1,
                        label="spectral theory" if i == 0 else None, zorder=1)
            errorbar_series(ax, kernel[n], kernel["mean"], kernel["std"], colour="#1f77b4", label="kernel regression")
            net = seed_stats(rows[rows[depth] == depth_value], "test_mse", [n])
            if len(net) and np.isfinite(net["mean"]).any():
                ax.errorbar(net[n], net["mean"], yerr=net["std"], fmt="s", ms=3.5, mfc="none", color="#d62728",
                            elinewidth=0.8, capsize=1.5, label="trained network", zorder=4)
            if int(depth_value) == 0:
                ax.axvline(d, color="0.5", ls=":", lw=0.9, zorder=0)
                ax.text(d * 1.08, 0.97, f"$P = d = {d}$", transform=ax.get_xaxis_transform(), va="top", fontsize=6,
                        color="0.35")
            kind = "linear kernel" if int(depth_value) == 0 else "ReLU NTK"
            ax.set_title(f"({letter}) depth {int(depth_value)}: {kind}", loc="left")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            _plain_log_ticks(ax)
            ax.set_xlabel("training samples $P$")
            ax.set_ylabel("test MSE")
        axes[0][0].legend(loc="lower left", fontsize=6)
    return fig


#: nn_vs_kernel: (label, quantity, column) of each method's measured markers, and of its theory line.
_NN_KERNEL_MARKERS = (("network", "trained network", "test_mse", "o"), ("ntk", "NTK at init", "init_kernel_test_mse", "s"),
                      ("nngp", "NNGP (256 random features)", "nngp_test_mse", "^"),
                      ("after", "after-kernel", "after_kernel_test_mse", "D"))
_NN_KERNEL_LINES = (("ntk", "analytic NTK", "init_kernel_test_mse"), ("nngp", "analytic NNGP", "nngp_test_mse"))


def nn_vs_kernel(results: "Results") -> "Figure":
    """Test MSE against n, log-log, one panel per d: the trained network, its empirical NTK at
    init, the width-256 random-features NNGP and the after-kernel as markers (one colour per
    method), the analytic NTK and NNGP as lines of their method's colour, and n = d^2 (the
    rotation-invariant kernels' threshold for a degree-2 target) as a dotted line."""
    import matplotlib.pyplot as plt

    rows = results.rows
    dims = sorted(set(seed_stats(rows, "test_mse", ["d"])["d"]))
    with plt.rc_context(PAPER_RC):
        fig, axes = plt.subplots(1, len(dims), figsize=(COLUMN_WIDTH * (1 if len(dims) == 1 else 2), 2.5),
                                 constrained_layout=True, squeeze=False, sharey=True)
        for ax, d, letter in zip(axes[0], dims, "abcd"):
            part = rows[rows["d"] == d]
            for method, label, quantity in _NN_KERNEL_LINES:
                t = seed_stats(part, quantity, ["n_train"], column="theory")
                ax.plot(t["n_train"], t["mean"], "-", color=METHOD_COLOURS[method], lw=1.1, label=label, zorder=1)
            for method, label, quantity, marker in _NN_KERNEL_MARKERS:
                s = seed_stats(part, quantity, ["n_train"])
                errorbar_series(ax, s["n_train"], s["mean"], s["std"], colour=METHOD_COLOURS[method], label=label,
                                marker=marker)
            ax.axvline(d**2, color="0.5", ls=":", lw=0.9, zorder=0)
            ax.text(d**2, 1.0, "$n = d^2$", transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=6,
                    color="0.35")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("training samples $n$")
            ax.set_title(f"({letter}) $d = {int(d)}$", loc="left", pad=8)
        axes[0][0].set_ylabel(r"test MSE (target variance 1)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=3 if len(dims) > 1 else 2, fontsize=6)
    return fig


def nn_vs_kernel_table(results: "Results") -> PaperTable:
    """Test MSE of the trained network beside its kernels per (d, n), and its first-layer
    alignment with the target direction against 1/d (frozen random weights)."""
    import pandas as pd

    rows = results.rows

    def value(part, quantity: str, column: str = "empirical") -> float:
        return float(seed_stats(part, quantity, ["d"], column=column)["mean"].iloc[0])

    out = []
    for (d, n), part in rows.groupby(["d", "n_train"], sort=True):
        out.append({"d": int(d), "n": int(n), "network": value(part, "test_mse"),
                    "NTK (analytic)": value(part, "init_kernel_test_mse", "theory"),
                    "NTK (init)": value(part, "init_kernel_test_mse"),
                    "NNGP (analytic)": value(part, "nngp_test_mse", "theory"),
                    "after-kernel": value(part, "after_kernel_test_mse"),
                    "alignment": value(part, "first_layer_alignment"),
                    "1/d": value(part, "first_layer_alignment", "theory")})
    caption = ("Network versus kernels on a single-index target $y = He_2(\\langle w, x\\rangle)/\\sqrt{2}$: test MSE "
               "of the trained network (rich regime), ridgeless regression with its analytic NTK, its empirical NTK at "
               "init, the analytic NNGP and the after-kernel; first-layer alignment with $w$ against $1/d$ "
               "(frozen weights).")
    return PaperTable(pd.DataFrame(out), caption)


def trajectories(results: "Results") -> "Figure":
    """The shared PCA-plane view of genlab.study.landscape_views (loss contours on the top-2
    principal directions of all cells' stacked snapshots, each optimizer's projected path),
    at column width; the study name moves from the title to the caption."""
    import matplotlib.pyplot as plt

    from genlab.study.landscape_views import plot_trajectory_plane

    with plt.rc_context(PAPER_RC):
        fig = plot_trajectory_plane(results)
        fig.set_size_inches(COLUMN_WIDTH, 2.9)
        ax = fig.axes[0]
        ax.set_title("")
        handles = [line for line in ax.lines if not line.get_label().startswith("_")]
        for line in handles:  # "optimizer=sgd, batch_size=32" -> "sgd, B=32"
            line.set_label(line.get_label().replace("optimizer=", "").replace("batch_size=", "B="))
        ax.get_legend().remove()
        ax.plot([], [], "s", color="0.3", ms=4, label="start")
        ax.plot([], [], "*", color="0.3", ms=6, label="end")
        fig.legend(handles=handles + ax.lines[-2:], loc="outside lower center", ncol=4, fontsize=6, handlelength=1.5,
                   columnspacing=0.8)
    return fig


def _stability_frame(results: "Results"):
    """Per (lr, batch): seed means of sharpness, non-uniformity and the stability factor, with
    the training-set size n of the cells."""
    rows = results.rows
    lr, batch = _column(results, "train.lr"), _column(results, "train.batch_size")
    frames = {q: seed_stats(rows, q, [lr, batch]).set_index([lr, batch])["mean"]
              for q in ("sharpness", "nonuniformity", "sgd_stability")}
    import pandas as pd

    frame = pd.DataFrame(frames).reset_index().rename(columns={lr: "lr", batch: "batch"})
    return frame, int(results.study.cells[0].config["task"]["n_train"])


def sgd_linear_stability(results: "Results") -> "Figure":
    """(a) Sharpness and (b) non-uniformity of the minimum SGD reaches against the batch size B
    (markers, one colour per learning rate; diverged runs omitted), with the linear-stability
    bounds of Wu, Ma & E (2018) as dashed lines of the same colour (upper bounds, not predicted
    values): 2/lr for the sharpness and sqrt(B(n-1)/(n-B))/lr for the non-uniformity (infinite
    at B = n)."""
    import matplotlib.pyplot as plt

    from genlab.theory.landscape import eos_threshold, sgd_max_nonuniformity

    frame, n = _stability_frame(results)
    colours = series_colours(frame["lr"], cmap="plasma")
    batches = sorted(set(frame["batch"]))
    dense = np.unique(np.geomspace(min(batches), n - 1, 60).round().astype(int))
    with plt.rc_context(PAPER_RC):
        fig, (ax_a, ax_s) = plt.subplots(1, 2, figsize=(FULL * 0.62, 2.3), constrained_layout=True)
        for lr, colour in colours.items():
            part = frame[(frame["lr"] == lr) & np.isfinite(frame["sharpness"])]
            ax_a.plot(part["batch"], part["sharpness"], "o", color=colour, ms=3.5, label=f"lr {lr:g}", zorder=3)
            ax_a.axhline(eos_threshold(float(lr)), color=colour, lw=1.0, ls="--", zorder=1)
            ax_s.plot(part["batch"], part["nonuniformity"], "o", color=colour, ms=3.5, zorder=3)
            ax_s.plot(dense, [sgd_max_nonuniformity(float(lr), int(b), n) for b in dense], "--", color=colour, lw=1.0,
                      zorder=1)
        measured = frame["nonuniformity"][np.isfinite(frame["nonuniformity"])]
        ax_s.set_ylim(0, 1.6 * float(measured.max()))
        ax_a.set_ylim(0, 1.15 * max(2 / float(lr) for lr in colours))
        for ax in (ax_a, ax_s):
            ax.set_xscale("log", base=2)
            ax.set_xlabel(f"batch size $B$ (n = {n})")
        ax_a.set_ylabel(r"sharpness $\lambda_{\max}(H)$")
        ax_s.set_ylabel(r"non-uniformity $s$")
        ax_a.plot([], [], "--", color="0.3", label=r"bound $2/\eta$")
        ax_s.plot([], [], "--", color="0.3", label=r"bound $\sqrt{B(n-1)/(n-B)}/\eta$")
        ax_a.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=6, handletextpad=0.3)
        ax_s.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=6)
        for ax, letter in ((ax_a, "(a)"), (ax_s, "(b)")):
            ax.text(0.03, 0.97, letter, transform=ax.transAxes, va="top", ha="left")
    return fig


def sgd_linear_stability_table(results: "Results") -> PaperTable:
    """Per (lr, B): measured sharpness and non-uniformity beside their bounds, printed as bounds
    ("≤ 20", "--" where there is none), and the stability factor
    (1 - eta a)^2 + eta^2 (n - B)/(B (n - 1)) s^2 (<= 1 for a minimum SGD can stay in)."""
    import pandas as pd

    from genlab.theory.landscape import eos_threshold, sgd_max_nonuniformity

    frame, n = _stability_frame(results)
    out = []
    for row in frame.sort_values(["lr", "batch"]).itertuples():
        bound = sgd_max_nonuniformity(float(row.lr), int(row.batch), n)
        shown = lambda v: float(v) if np.isfinite(v) else "diverged"  # noqa: E731  (NaN: no minimum reached)
        out.append({"lr": float(row.lr), "B": int(row.batch), "sharpness": shown(row.sharpness),
                    "$2/\\eta$": f"≤ {eos_threshold(float(row.lr)):.4g}", "non-uniformity": shown(row.nonuniformity),
                    "$s_{\\max}$": f"≤ {bound:.4g}" if np.isfinite(bound) else "--",
                    "stability factor (≤ 1)": shown(row.sgd_stability)})
    caption = (f"Linear stability of the minima SGD reaches (Wu, Ma & E 2018; n = {n} digits images, erf network): "
               "a minimum is stable iff the stability factor is at most 1, which bounds the sharpness by $2/\\eta$ "
               "and the non-uniformity by $s_{\\max}$ (none at full batch).")
    return PaperTable(pd.DataFrame(out), caption, closed_forms(["sgd_stability", "nonuniformity"]))


def max_margin(results: "Results") -> "Figure":
    """(a) Cosine between the GD iterate of a linear logistic model and the hard-margin SVM
    direction against log10 step, one curve per (d, lr), with the limit 1 (Soudry et al. 2018)
    as a line; (b) 1 - cosine on a log scale, with c / log(lr t)^2 (the O(1/log t) rate of the
    direction, squared) through each curve's last point as a dashed line of its colour."""
    import matplotlib.pyplot as plt

    cells = results.cells.set_index("cell")
    d_col, lr_col = _column(results, "task.d"), _column(results, "train.lr")
    keys = {ident: (int(cells.loc[ident, d_col]), float(cells.loc[ident, lr_col])) for ident in results.curves}
    colours = series_colours([d for d, _ in keys.values()], cmap="viridis")
    styles = dict(zip(sorted({lr for _, lr in keys.values()}), ("o", "s", "^", "D")))
    with plt.rc_context(PAPER_RC):
        fig, (ax_c, ax_g) = plt.subplots(2, 1, figsize=(COLUMN_WIDTH, 3.4), sharex=True, constrained_layout=True)
        for ident, (d, lr) in sorted(keys.items(), key=lambda kv: kv[1]):
            data = results.curves[ident].get("margin_cosine")
            if not data:
                continue
            log_t = np.asarray(data["empirical_log10_step"], dtype=float)
            cos = np.asarray(data["empirical"], dtype=float)
            # markers thinned to ~15 per curve, evenly spaced in log10 t (the steps are evenly spaced in t)
            every = sorted(set(np.searchsorted(log_t, np.linspace(log_t[0], log_t[-1], 15)).clip(0, len(log_t) - 1).tolist()))
            style = {"color": colours[d], "marker": styles[lr], "ms": 2.5, "markevery": every, "lw": 0.7}
            ax_c.plot(log_t, cos, label=f"d = {d}, lr {lr:g}", **style)
            ax_g.plot(log_t, 1 - cos, **style)
            t = 10**log_t
            rate = np.log(lr * t) ** -2.0
            ax_g.plot(log_t, (1 - cos[-1]) / rate[-1] * rate, "--", color=colours[d], lw=0.8, zorder=1)
        ax_c.axhline(1.0, color="0.15", lw=1.0, label="SVM direction (limit)", zorder=1)
        ax_c.set_ylabel(r"$\cos(w_t, w_{\mathrm{SVM}})$")
        ax_c.legend(loc="lower right", fontsize=6, ncol=1)
        ax_g.set_yscale("log")
        ax_g.set_ylabel(r"$1 - \cos(w_t, w_{\mathrm{SVM}})$")
        ax_g.set_xlabel(r"$\log_{10}$ GD step $t$")
        ax_g.plot([], [], "--", color="0.3", label=r"$\propto 1/\log^2(\eta t)$")
        ax_g.legend(loc="lower left", fontsize=6)
        ax_c.set_title("(a)", loc="left")
        ax_g.set_title("(b)", loc="left")
    return fig


def diag_linear_bias_table(results: "Results") -> PaperTable:
    """Per init scale alpha: the l1 and l2 norms and test MSE of the argmin-Q_alpha interpolant
    beside GD's, the relative distance between the two solutions and the support recovered
    (seed means), with Q_alpha's per-coordinate closed form in the caption."""
    import pandas as pd

    rows = results.rows
    alpha = _column(results, "model.w_std")

    def mean(quantity: str, column: str = "empirical") -> list[float]:
        return seed_stats(rows, quantity, [alpha], column=column)["mean"].tolist()

    scales = seed_stats(rows, "solution_l1", [alpha])[alpha].tolist()
    frame = pd.DataFrame({
        r"$\alpha$": scales,
        r"$\|\beta\|_1$ ($Q_\alpha$)": mean("solution_l1", "theory"), r"$\|\beta\|_1$ (GD)": mean("solution_l1"),
        r"$\|\beta\|_2$ ($Q_\alpha$)": mean("solution_l2", "theory"), r"$\|\beta\|_2$ (GD)": mean("solution_l2"),
        "rel. distance": mean("solution_distance"), "support": mean("support_recovery"),
        r"test MSE ($Q_\alpha$)": mean("solution_test_mse", "theory"), "test MSE (GD)": mean("solution_test_mse"),
    })
    caption = ("Diagonal linear network trained by GD from $u_0 = v_0 = \\alpha\\mathbf{1}$ against the interpolant "
               "minimising $Q_\\alpha(\\beta) = \\sum_i q_\\alpha(\\beta_i)$ (Woodworth et al. 2020); rel. distance: "
               "$\\|\\beta_{GD} - \\beta_{Q}\\|/\\|\\beta_{Q}\\|$; support: share of the planted support among the "
               "largest entries.")
    return PaperTable(frame, caption, closed_forms(["q_alpha"]))
