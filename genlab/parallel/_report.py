"""The summary of a train-parallel run directory: its table and its figure.

The table has one row per run (method, workers) and is rendered by the study table's markdown
writer (:func:`genlab.study._table.to_markdown`; numbers to 4 significant digits as in study
tables). The figure shows, against the samples spent, the center's train loss and test error,
the workers' spread around the center and the center's sharpness: colour the method, line style
the worker count. Neither writes a file: :func:`genlab.parallel.train_parallel` does.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from genlab.study._table import format_label, format_value, to_markdown

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

#: The summary columns shown in table.md (summary.csv has every result field).
TABLE_COLUMNS = ("method", "nproc", "test_error", "test_loss", "train_loss", "sharpness", "spread", "communications",
                 "samples", "wall_seconds", "samples_per_second")
#: Figure panels: rounds.csv column, title, y scale.
PANELS = (("train_loss", "center train loss", "log"), ("test_error", "center test error", "linear"),
          ("spread", "spread mean ||x_i - x_ref||", "linear"), ("sharpness", "sharpness of the center", "linear"))


def _cell(value: Any) -> str:
    return format_value(value, math.nan, 1) if isinstance(value, float) else format_label(value)


def summary_markdown(summary: pd.DataFrame, *, name: str, description: str) -> str:
    """``table.md``: the TABLE_COLUMNS of ``summary`` (one row per run) as a study-style markdown table."""
    table = summary[list(TABLE_COLUMNS)].astype(object).map(_cell)
    return to_markdown(table, name=name, description=description, note="")


def plot_rounds(rounds: dict[tuple[str, int], pd.DataFrame]) -> Figure:
    """The four panels of PANELS for every run's ``rounds.csv``, keyed by (method, workers)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    colors = {m: f"C{i}" for i, m in enumerate(dict.fromkeys(m for m, _ in rounds))}
    styles = {n: ("-", "--", ":", "-.")[i % 4] for i, n in enumerate(sorted({n for _, n in rounds}))}
    for ax, (column, title, scale) in zip(axes.flat, PANELS):
        for (method, n), frame in rounds.items():
            frame = frame[frame[column].notna()]
            ax.plot(frame["samples"], frame[column], color=colors[method], linestyle=styles[n],
                    marker="o" if column == "sharpness" else None, ms=3, label=f"{method} p={n}")
        ax.set_title(title)
        ax.set_xlabel("samples")
        ax.set_yscale(scale)
    axes.flat[0].legend(fontsize=7)
    return fig
