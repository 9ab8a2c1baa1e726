"""The regime verdict, aggregation over seeds and the table formats."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest
from rich.console import Console

from genlab.study import CellOutput, QuantityRow, Results, parse, regime_verdict
from genlab.study._table import format_value
from tests.study.conftest import study_dict
from tests.study.fake_cells import fake_cell


def output(drift: float | None, mse: float | None, mse_theory: float | None = 1.0, status: str = "ok") -> CellOutput:
    return CellOutput(rows=[QuantityRow("ntk_drift", 0.05, drift), QuantityRow("test_mse", mse_theory, mse)], status=status)


@pytest.mark.parametrize(
    ("cell", "verdict"),
    [
        (output(0.01, 1.05), "kernel"),                 # kernel barely moves, error within 10 % of the kernel's
        (output(0.01, 0.90), "kernel"),                 # |0.9 - 1| = 0.1 <= 0.1 * 1: the bound is inclusive
        (output(0.01, 1.5), "intermediate"),            # frozen kernel but the error does not match it
        (output(0.5, 0.5), "feature learning"),         # kernel moved and the net beats it
        (output(0.1, 0.89), "feature learning"),        # drift == threshold counts as moved
        (output(0.5, 0.95), "intermediate"),            # moved, but does not beat the kernel by 10 %
        (output(0.5, 1.5), "intermediate"),
        (output(None, 1.0), "n/a"),
        (output(0.01, None), "n/a"),
        (output(0.01, 1.0, mse_theory=None), "n/a"),
        (output(0.01, math.nan), "n/a"),
        (output(0.01, 1.0, status="diverged"), "diverged"),
        (CellOutput(rows=[QuantityRow("train_loss", 1.0, 1.0)]), "n/a"),
        (None, "error"),
    ],
)
def test_regime_verdict(cell: CellOutput | None, verdict: str) -> None:
    assert regime_verdict(cell) == verdict


def test_regime_thresholds_are_parameters() -> None:
    assert regime_verdict(output(0.15, 1.0), drift_threshold=0.2) == "kernel"
    assert regime_verdict(output(0.01, 1.3), error_tolerance=0.5) == "kernel"
    assert regime_verdict(output(0.5, 0.95), error_tolerance=0.01) == "feature learning"


def test_format_value() -> None:
    assert format_value(0.123456, 0.00789, 3) == "0.1235 ± 0.0079"
    assert format_value(2.0, math.nan, 1) == "2"
    assert format_value(math.nan, math.nan, 0) == ""


@pytest.fixture
def results(tmp_path: Path) -> Results:
    data = study_dict(grid={"alpha": [0.1, 10.0], "width": [8, 16], "seed": [0, 1, 2]}, quantities=["test_mse", "ntk_drift", "train_loss", "test_error"])
    return parse(data).run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)


def test_table_aggregates_over_seeds(results: Results) -> None:
    table = results.table()
    assert list(table.columns) == ["alpha", "width", "quantity", "theory", "empirical", "gap", "regime"]
    assert len(table) == 2 * 2 * 4
    row = table[(table["alpha"] == "10") & (table["width"] == "16") & (table["quantity"] == "train_loss")].iloc[0]
    # empirical = width + seed over seeds 0, 1, 2: mean 17, sample std 1
    assert (row["theory"], row["empirical"], row["gap"], row["regime"]) == ("16 ± 0", "17 ± 1", "1 ± 1", "kernel")
    error = table[table["quantity"] == "test_error"].iloc[0]
    assert (error["theory"], error["empirical"], error["gap"]) == ("", "0.25 ± 0", "")
    summary = results.summary()
    assert list(summary["empirical_n"]) == [3] * 16 and list(summary["theory_n"][:4]) == [3, 3, 3, 0]
    assert summary.loc[0, "empirical_mean"] == pytest.approx(0.51)


def test_table_rows_quantities_and_no_aggregation(tmp_path: Path) -> None:
    data = study_dict(table={"rows": ["seed", "width", "alpha"], "aggregate": "none", "quantities": ["train_loss"]})
    table = parse(data).run(out=tmp_path / "run", workers=1, cell_fn=fake_cell).table()
    assert list(table.columns[:4]) == ["seed", "width", "alpha", "quantity"]
    assert set(table["quantity"]) == {"train_loss"} and len(table) == 8
    assert "±" not in "".join(table["empirical"])


def test_mixed_verdicts_are_counted(tmp_path: Path) -> None:
    data = study_dict(grid={"width": [8], "alpha": [0.1, 10.0]}, table={"rows": ["width"], "aggregate": "alpha"})
    table = parse(data).run(out=tmp_path / "run", workers=1, cell_fn=fake_cell).table()
    assert set(table["regime"]) == {"feature learning 1/2, kernel 1/2"}


def test_markdown(results: Results) -> None:
    text = results.render("md")
    lines = text.splitlines()
    assert lines[0] == "## toy_study"
    assert lines[2] == results.study.description
    assert lines[4] == "| alpha | width | quantity | theory | empirical | gap | regime |"
    assert lines[5].startswith("| ---: | ---: | :--- |")
    assert "| 10 | 16 | train_loss | 16 ± 0 | 17 ± 1 | 1 ± 1 | kernel |" in lines
    assert lines[-1] == "_Mean ± std (ddof = 1) over 3 values of seed._"


def test_latex(results: Results) -> None:
    text = results.render("latex")
    assert text.startswith("% toy_study\n% Hypothesis")
    for command in (r"\begin{tabular}{rrlrrrl}", r"\toprule", r"\midrule", r"\bottomrule", r"\end{tabular}"):
        assert command in text
    assert r"10 & 16 & train\_loss & 16 $\pm$ 0 & 17 $\pm$ 1 & 1 $\pm$ 1 & kernel \\" in text


def test_csv(results: Results) -> None:
    rows = list(csv.DictReader(io.StringIO(results.render("csv"))))
    assert len(rows) == 16 and rows[0]["quantity"] == "test_mse"
    assert list(rows[0]) == ["alpha", "width", "quantity", "theory", "empirical", "gap", "regime"]


def test_unknown_format(results: Results) -> None:
    with pytest.raises(ValueError, match="fmt must be one of 'md', 'latex', 'csv'"):
        results.render("html")


def test_notebook_and_terminal_displays(results: Results) -> None:
    html = results._repr_html_()
    assert html.startswith("<h3>toy_study</h3>") and "<table" in html and "17 ± 1" in html
    console = Console(record=True, width=160, file=io.StringIO())
    console.print(results)
    text = console.export_text()
    assert "toy_study" in text and "17 ± 1" in text and "feature learning" in text and "Hypothesis" in text
    assert repr(results).startswith("Results(study='toy_study'")
