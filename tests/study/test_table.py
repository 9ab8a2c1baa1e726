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


# ---------------------------------------------------------------------------------------------
# Bounds: shown as "≤ x" / "≥ x" with "satisfied" / "violated", never as a gap.


def bound_cell(config: dict) -> CellOutput:
    """Per seed s (0, 1, 2): ``sgd_stability`` <= 1 measured 0.5 + 0.3 s (violated at s = 2 only:
    1.1), ``sharpness`` <= 10 measured 9 (satisfied), ``nonuniformity`` >= 2 measured 3 - s
    (violated at s = 2: 1), and the value ``test_mse`` = 1 measured 1 + 0.01 s. Width 8's seed 2
    fails to measure ``sgd_stability`` (None): its bound is not checked."""
    seed, width = config["train"]["seed"], config["model"]["width"]
    stability = None if (width, seed) == (8, 2) else 0.5 + 0.3 * seed
    return CellOutput(rows=[
        QuantityRow("test_mse", 1.0, 1.0 + 0.01 * seed),
        QuantityRow("sgd_stability", 1.0, stability, "upper"),
        QuantityRow("sharpness", 10.0, 9.0, "upper"),
        QuantityRow("nonuniformity", 2.0, 3.0 - seed, "lower"),
    ])


BOUND_QUANTITIES = ["test_mse", "sgd_stability", "sharpness", "nonuniformity"]


@pytest.fixture
def bounds(tmp_path: Path) -> Results:
    data = study_dict(grid={"width": [8, 16], "seed": [0, 1, 2]}, quantities=BOUND_QUANTITIES)
    return parse(data).run(out=tmp_path / "run", workers=1, cell_fn=bound_cell)


def test_results_frame_has_the_kind_and_a_verdict_instead_of_a_gap_for_bounds(bounds: Results) -> None:
    rows = bounds.rows
    assert list(rows.columns) == ["width", "seed", "quantity", "theory", "theory_kind", "empirical", "gap", "bound", "regime"]
    by_quantity = {q: part for q, part in rows.groupby("quantity")}
    mse = by_quantity["test_mse"]
    assert set(mse["theory_kind"]) == {"value"} and mse["bound"].isna().all()
    # the same subtraction done by the store: equal up to one rounding (abs for gaps that are 0)
    assert mse["gap"].to_numpy() == pytest.approx((mse["empirical"] - mse["theory"]).to_numpy(), rel=1e-15, abs=1e-15)
    stability = by_quantity["sgd_stability"]
    assert set(stability["theory_kind"]) == {"upper"} and stability["gap"].isna().all()
    assert list(stability["bound"].fillna("")) == ["satisfied", "satisfied", "", "satisfied", "satisfied", "violated"]
    assert list(by_quantity["nonuniformity"]["bound"]) == ["satisfied", "satisfied", "violated"] * 2
    csv_rows = list(csv.DictReader(io.StringIO((bounds.run_dir / "results.csv").read_text(encoding="utf-8"))))
    assert list(csv_rows[1].values())[2:] == ["sgd_stability", "1.0", "upper", "0.5", "", "satisfied", "n/a"]
    assert list(csv_rows[0].values())[2:7] == ["test_mse", "1.0", "value", "1.0", "0.0"] and csv_rows[0]["bound"] == ""


def test_bounds_are_shown_as_bounds_over_seeds(bounds: Results) -> None:
    table = bounds.table()
    assert list(table.columns) == ["width", "quantity", "theory", "empirical", "gap", "regime"]
    rows = {(w, q): r for w, q, r in zip(table["width"], table["quantity"], table.to_dict("records"))}
    assert (rows["16", "sgd_stability"]["theory"], rows["16", "sgd_stability"]["gap"]) == ("≤ 1", "violated 1/3")
    assert rows["16", "sgd_stability"]["empirical"] == "0.8 ± 0.3"
    assert rows["8", "sgd_stability"]["gap"] == "satisfied 2/2"  # the unmeasured seed is not counted
    assert (rows["16", "sharpness"]["theory"], rows["16", "sharpness"]["gap"]) == ("≤ 10", "satisfied 3/3")
    assert (rows["16", "nonuniformity"]["theory"], rows["16", "nonuniformity"]["gap"]) == ("≥ 2", "violated 1/3")
    assert (rows["16", "test_mse"]["theory"], rows["16", "test_mse"]["gap"]) == ("1 ± 0", "0.01 ± 0.01")
    summary = bounds.summary()
    stability = summary[(summary["width"] == 16) & (summary["quantity"] == "sgd_stability")].iloc[0]
    assert (stability["theory_kind"], stability["bound_satisfied"], stability["bound_n"], stability["gap_n"]) == ("upper", 2, 3, 0)


def test_a_single_cell_bound_reads_satisfied_or_violated(tmp_path: Path) -> None:
    data = study_dict(grid={"width": [16], "seed": [0, 2]}, quantities=BOUND_QUANTITIES,
                      table={"rows": ["width", "seed"], "aggregate": "none"})
    table = parse(data).run(out=tmp_path / "run", workers=1, cell_fn=bound_cell).table()
    stability = table[table["quantity"] == "sgd_stability"]
    assert list(stability["theory"]) == ["≤ 1", "≤ 1"] and list(stability["gap"]) == ["satisfied", "violated"]


def test_bound_rows_in_markdown_latex_and_csv(bounds: Results) -> None:
    md = bounds.render("md").splitlines()
    assert "| 16 | sgd_stability | ≤ 1 | 0.8 ± 0.3 | violated 1/3 | n/a |" in md
    assert "| 16 | sharpness | ≤ 10 | 9 ± 0 | satisfied 3/3 | n/a |" in md
    assert "| 16 | test_mse | 1 ± 0 | 1.01 ± 0.01 | 0.01 ± 0.01 | n/a |" in md  # a value row as before
    latex = bounds.render("latex")
    assert r"16 & sgd\_stability & $\le$ 1 & 0.8 $\pm$ 0.3 & violated 1/3 & n/a \\" in latex
    assert r"16 & nonuniformity & $\ge$ 2 & 2 $\pm$ 1 & violated 1/3 & n/a \\" in latex
    rendered = {(r["width"], r["quantity"]): r for r in csv.DictReader(io.StringIO(bounds.render("csv")))}
    assert (rendered["16", "sharpness"]["theory"], rendered["16", "sharpness"]["gap"]) == ("≤ 10", "satisfied 3/3")
    html = bounds._repr_html_()
    assert "≤ 10" in html and "satisfied 3/3" in html


def test_cells_with_different_kinds_are_not_pooled(tmp_path: Path) -> None:
    """Aggregating over a key that turns a value into a bound (GD vs SGD) keeps one row per kind."""
    data = study_dict(grid={"width": [8, 16], "seed": [0]}, quantities=["sharpness"],
                      table={"rows": ["seed"], "aggregate": "width"})
    table = parse(data).run(out=tmp_path / "run", workers=1, cell_fn=mixed_kind_cell).table()
    assert list(zip(table["theory"], table["gap"])) == [("10", "-1"), ("≤ 10", "satisfied")]


def mixed_kind_cell(config: dict) -> CellOutput:
    """``sharpness`` 10 measured 9: a value at width 8, an upper bound at width 16."""
    kind = "value" if config["model"]["width"] == 8 else "upper"
    return CellOutput(rows=[QuantityRow("sharpness", 10.0, 9.0, kind)])
