"""A prediction that is a bound is drawn as one: a dashed line, named in the title."""

from __future__ import annotations

from pathlib import Path

from genlab.study import CellOutput, QuantityRow, parse
from genlab.study.plots import plot_curves
from tests.study.conftest import study_dict


def sharpness_cell(config: dict) -> CellOutput:
    """A sharpness curve under a threshold 10: the plateau value at width 8 (as under GD), an
    upper bound at width 16 (as under SGD)."""
    kind = "value" if config["model"]["width"] == 8 else "upper"
    curves = {"sharpness": {"empirical_step": [0.0, 5.0, 10.0], "empirical": [2.0, 6.0, 9.0],
                            "theory_step": [0.0, 10.0], "theory": [10.0, 10.0]}}
    return CellOutput(rows=[QuantityRow("sharpness", 10.0, 9.0, kind)], curves=curves)


def test_a_bound_is_dashed_and_a_value_solid(tmp_path: Path) -> None:
    run = parse(study_dict(grid={"width": [8, 16]}, quantities=["sharpness"])).run(
        out=tmp_path / "run", workers=1, cell_fn=sharpness_cell)
    assert [run.theory_kind(c.id, "sharpness") for c in run.study.cells] == ["value", "upper"]
    (ax,) = plot_curves(run, "sharpness").axes
    theory = [line for line in ax.lines if line.get_linestyle() in ("-", "--")]
    assert sorted(line.get_linestyle() for line in theory) == ["-", "--"]
    assert "lines: theory, dashed: bound" in ax.get_title()
