"""Figures: plot functions return figures (theory lines, measured markers); `genlab plot` saves."""

from __future__ import annotations

from pathlib import Path

import pytest

from genlab.cli import main
from genlab.study import parse
from genlab.study.plots import curve_quantities, plot_curves
from tests.study.conftest import study_dict
from tests.study.fake_cells import curve_cell


@pytest.fixture
def run(tmp_path: Path):
    return parse(study_dict(grid={"width": [8, 16]})).run(out=tmp_path / "run", workers=1, cell_fn=curve_cell)


def test_plot_curves_draws_markers_for_measurements_and_lines_for_theory(run) -> None:
    assert curve_quantities(run) == ["train_loss"]
    figure = plot_curves(run, "train_loss")
    (ax,) = figure.axes
    markers = [line for line in ax.lines if line.get_linestyle() == "None"]
    lines = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(markers) == 2 and len(lines) == 2
    assert sorted(m.get_ydata()[0] for m in markers) == [8.0, 16.0]
    assert ax.get_xlabel() == "step"
    with pytest.raises(ValueError, match=r"quantity must be one with curves in this run \(train_loss\); got 'test_mse'"):
        plot_curves(run, "test_mse")


def test_cli_plot_saves_png_and_pdf(run, capsys: pytest.CaptureFixture) -> None:
    assert main(["plot", str(run.run_dir)]) == 0
    for suffix in (".png", ".pdf"):
        assert (run.run_dir / "figures" / f"train_loss{suffix}").stat().st_size > 1000
    assert main(["plot", str(run.run_dir), "--quantity", "nope"]) == 2
    assert "--quantity must be one with curves" in capsys.readouterr().err
