"""The side-by-side table: aggregation over seeds and rendering (markdown, LaTeX, CSV, rich, HTML).

One table row per (row labels, quantity): ``theory | empirical | gap | regime``. Cells that
differ only in the aggregated key (by default the training seed) are averaged: a value reads
"mean ± std" (sample standard deviation, ddof = 1, over the cells where it is present) and is
plain where one value is present. The regime column shows the verdict, or the share of each
verdict when they differ ("kernel 2/3, intermediate 1/3").

Where the theory gives a bound (results' ``theory_kind`` "upper" or "lower"), the theory column
reads "≤ 10" or "≥ 10" (LaTeX ``$\\le$`` / ``$\\ge$``) and the gap column says whether the
measurement respects it: "satisfied" or "violated" for one cell, "satisfied 3/3" when every cell
does, "violated 1/3" when some do not; never a numeric gap. Cells whose theory kinds differ are
not pooled: each kind gets its own row.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

FORMATS = ("md", "latex", "csv")
VALUE_COLUMNS = ("theory", "empirical", "gap")
#: How a bound's theory number is shown (genlab.quantities.PREDICTION_KINDS).
BOUND_SIGNS = {"upper": "≤", "lower": "≥"}
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_LATEX_MATH = {"±": r"$\pm$", "≤": r"$\le$", "≥": r"$\ge$"}


def _stats(values: list[float]) -> tuple[float, float, int]:
    present = [v for v in values if v is not None and math.isfinite(v)]
    n = len(present)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(present) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in present) / (n - 1)) if n > 1 else math.nan
    return mean, std, n


def _verdicts(values: list[str]) -> str:
    counts = Counter(values)
    if len(counts) == 1:
        return values[0]
    return ", ".join(f"{v} {c}/{len(values)}" for v, c in counts.most_common())


def _by_kind(rows: "pd.DataFrame", index: list[int]) -> list[tuple[str, list[int]]]:
    """``index`` split by theory kind, in order of appearance; a row without a prediction joins
    the first kind present (a failed seed stays in its row), "value" when none is."""
    kinds = [k if isinstance(k, str) and k else None for k in rows["theory_kind"].iloc[index]]
    first = next((k for k in kinds if k is not None), "value")
    split: dict[str, list[int]] = {}
    for i, kind in zip(index, kinds):
        split.setdefault(kind or first, []).append(i)
    return list(split.items())


def summarize(rows: "pd.DataFrame", *, row_columns: list[str], quantities: list[str]) -> "pd.DataFrame":
    """Numeric summary: one row per (row labels, quantity, theory kind) with ``theory_kind``,
    ``<col>_mean``, ``<col>_std``, ``<col>_n`` for theory, empirical and gap, ``bound_satisfied``
    and ``bound_n`` (cells whose bound was checked, and satisfied), then ``cells`` and
    ``regime``. Rows that share the labels (differing in the aggregated key) are pooled; order:
    first appearance in ``rows``, then ``quantities``."""
    import pandas as pd

    groups: dict[tuple[Any, ...], dict[str, list[int]]] = {}
    wanted = set(quantities)
    for i, (labels, quantity) in enumerate(zip(rows[row_columns].itertuples(index=False, name=None), rows["quantity"])):
        if quantity in wanted:
            groups.setdefault(tuple(labels), {}).setdefault(quantity, []).append(i)
    out = []
    for labels, by_quantity in groups.items():
        for quantity in quantities:
            for kind, index in _by_kind(rows, by_quantity.get(quantity, [])):
                part = rows.iloc[index]
                entry: dict[str, Any] = dict(zip(row_columns, labels))
                entry.update({"quantity": quantity, "theory_kind": kind})
                for column in VALUE_COLUMNS:
                    mean, std, n = _stats([float(v) for v in part[column]])
                    entry.update({f"{column}_mean": mean, f"{column}_std": std, f"{column}_n": n})
                verdicts = [v for v in part["bound"] if isinstance(v, str)]
                entry.update({"bound_satisfied": verdicts.count("satisfied"), "bound_n": len(verdicts)})
                entry["cells"] = len(part)
                entry["regime"] = _verdicts(list(part["regime"]))
                out.append(entry)
    stat_columns = [f"{c}_{s}" for c in VALUE_COLUMNS for s in ("mean", "std", "n")]
    return pd.DataFrame(out, columns=[*row_columns, "quantity", "theory_kind", *stat_columns, "bound_satisfied",
                                      "bound_n", "cells", "regime"])


def format_value(mean: float, std: float, n: int) -> str:
    """ "mean ± std" (4 and 2 significant digits), the plain mean for one value, "" for none."""
    if n == 0 or not math.isfinite(mean):
        return ""
    if n == 1 or not math.isfinite(std):
        return f"{mean:.4g}"
    return f"{mean:.4g} ± {std:.2g}"


def format_bound(kind: str, mean: float, std: float, n: int) -> str:
    """A bound's theory cell: "≤ 10" ("≥" for a lower bound), "≤ 10 ± 0.5" where the bound
    itself varies over the pooled cells, "" for none."""
    text = format_value(mean, std if std > 0 else math.nan, n)
    return f"{BOUND_SIGNS[kind]} {text}" if text else ""


def format_verdict(satisfied: int, n: int) -> str:
    """A bound's gap cell: "satisfied" / "violated" for one cell; over several, "satisfied 3/3"
    when every cell respects the bound, else "violated 1/3" (the cells that do not); "" for none."""
    if n == 0:
        return ""
    if n == 1:
        return "satisfied" if satisfied else "violated"
    return f"satisfied {n}/{n}" if satisfied == n else f"violated {n - satisfied}/{n}"


def format_label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def side_by_side(summary: "pd.DataFrame", *, row_columns: list[str]) -> "pd.DataFrame":
    """The displayed table (strings): row labels, quantity, theory, empirical, gap, regime; a
    bound row shows "≤ x" as its theory and "satisfied" / "violated" as its gap."""
    import pandas as pd

    out = pd.DataFrame({column: [format_label(v) for v in summary[column]] for column in row_columns})
    out["quantity"] = list(summary["quantity"])
    for column in VALUE_COLUMNS:
        out[column] = [format_value(m, s, n) for m, s, n in
                       zip(summary[f"{column}_mean"], summary[f"{column}_std"], summary[f"{column}_n"])]
    bound = summary["theory_kind"].isin(list(BOUND_SIGNS)).to_numpy()
    for i in bound.nonzero()[0]:
        row = summary.iloc[i]
        out.loc[i, "theory"] = format_bound(row["theory_kind"], row["theory_mean"], row["theory_std"], row["theory_n"])
        out.loc[i, "gap"] = format_verdict(int(row["bound_satisfied"]), int(row["bound_n"]))
    out["regime"] = list(summary["regime"])
    return out.astype(object)


def _aligns(table: "pd.DataFrame") -> list[str]:
    return ["l" if column in ("quantity", "regime") else "r" for column in table.columns]


def to_markdown(table: "pd.DataFrame", *, name: str, description: str, note: str) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", r"\|").replace("\n", " ")

    lines = [f"## {name}", "", description.strip(), ""]
    lines.append("| " + " | ".join(cell(c) for c in table.columns) + " |")
    lines.append("| " + " | ".join("---:" if a == "r" else ":---" for a in _aligns(table)) + " |")
    for row in table.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    if note:
        lines += ["", f"_{note}_"]
    return "\n".join(lines) + "\n"


def _latex(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, _LATEX_MATH.get(ch, ch)) for ch in str(text))


def to_latex(table: "pd.DataFrame", *, name: str, description: str, note: str) -> str:
    """A booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), preceded by comment lines."""
    lines = [f"% {name}"] + [f"% {line}" for line in description.strip().splitlines()]
    if note:
        lines.append(f"% {note}")
    lines.append(r"\begin{tabular}{" + "".join(_aligns(table)) + "}")
    lines.append(r"\toprule")
    lines.append(" & ".join(_latex(c) for c in table.columns) + r" \\")
    lines.append(r"\midrule")
    for row in table.itertuples(index=False, name=None):
        lines.append(" & ".join(_latex(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def to_csv(table: "pd.DataFrame") -> str:
    return table.to_csv(index=False, lineterminator="\n")


def to_html(table: "pd.DataFrame", *, name: str, description: str, note: str) -> str:
    parts = [f"<h3>{html.escape(name)}</h3>", f"<p>{html.escape(description.strip())}</p>",
             table.to_html(index=False, escape=True)]
    if note:
        parts.append(f"<p><em>{html.escape(note)}</em></p>")
    return "\n".join(parts)


def to_rich(table: "pd.DataFrame", *, name: str, description: str, note: str) -> "Table":
    from rich.table import Table
    from rich.text import Text

    out = Table(title=Text(name, style="bold"), caption=Text(" ".join(filter(None, [description.strip(), note]))),
                caption_justify="left")
    for column, align in zip(table.columns, _aligns(table)):
        out.add_column(str(column), justify="right" if align == "r" else "left",
                       min_width=len("feature learning") if column == "regime" else None)
    for row in table.itertuples(index=False, name=None):
        out.add_row(*(Text(str(v)) for v in row))
    return out


def render(table: "pd.DataFrame", fmt: str, *, name: str, description: str, note: str) -> str:
    """The table as text in ``fmt``: "md", "latex" or "csv"."""
    if fmt == "md":
        return to_markdown(table, name=name, description=description, note=note)
    if fmt == "latex":
        return to_latex(table, name=name, description=description, note=note)
    if fmt == "csv":
        return to_csv(table)
    raise ValueError(f"fmt must be one of {', '.join(map(repr, FORMATS))}; got {fmt!r}")
