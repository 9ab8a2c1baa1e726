"""`genlab paper`: figures and tables from studies, provenance sidecars, no rewrite when nothing
changed, draft grids that reuse the full grid's cells, and the shipped paper.toml.

The studies here run a closed-form fake cell (tests/paper/fake_paper_cells.py, no torch), so the
numbers a recipe draws can be checked against the formulas that made them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sympy

from genlab.cli import main
from genlab.paper import PaperConfigError, build, load_paper, study_data
from genlab.study import parse
from tests.paper import fake_paper_cells
from tests.paper.fake_paper_cells import paper_cell

REPO = Path(__file__).resolve().parents[2]

LAZY = """
name = "lazy"
description = "Hypothesis: the drift collapses in alpha sqrt(width)."
quantities = ["test_mse", "ntk_drift"]
[task]
name = "single_index"
n_train = 16
n_test = 16
d = 4
[model]
depth = 1
width = 16
[train]
steps = 5
[grid]
alpha = [0.1, 1.0, 10.0]
width = [16, 64, 256]
seed = [0, 1]
"""

WIDTH = """
name = "widths"
description = "Hypothesis: distances vanish with width."
quantities = ["test_mse", "ntk_drift", "weight_change", "linearization_distance"]
[task]
name = "teacher_student"
n_train = 16
n_test = 16
d = 4
[model]
depth = 1
width = 16
alpha = 1.0
[train]
steps = 5
[grid]
width = [16, 64, 256, 1024]
seed = [0, 1, 2]
"""

EOS = """
name = "eos"
description = "Hypothesis: the sharpness hovers at 2/lr."
quantities = ["sharpness_late", "sharpness_max", "sharpness", "steps_to_eos"]
[task]
name = "digits"
n_train = 20
n_test = 20
[model]
depth = 1
width = 8
out_dim = 10
[train]
steps = 5
[grid]
lr = [0.1, 0.2, 0.4]
"""


def _paper_toml(recipes: str) -> str:
    return textwrap.dedent(f"""
        recipes = "{recipes}"

        [[figure]]
        name = "lazy_vs_rich"
        study = "studies/lazy.toml"
        recipe = "lazy_vs_rich"
        [figure.draft]
        grid = {{ alpha = [0.1, 10.0], width = [16, 256], seed = [0] }}

        [[figure]]
        name = "width_convergence"
        study = "studies/widths.toml"
        recipe = "width_convergence"

        [[figure]]
        name = "edge_of_stability"
        study = "studies/eos.toml"
        recipe = "edge_of_stability"

        [[table]]
        name = "eos_sharpness"
        study = "studies/eos.toml"
        recipe = "edge_of_stability_table"

        [[table]]
        name = "lazy_table"
        study = "studies/lazy.toml"
        recipe = "theory_table"
    """)


@pytest.fixture
def paper_dir(tmp_path: Path) -> Path:
    """A repository-like folder: studies/ and paper/ with the shipped recipes."""
    (tmp_path / "studies").mkdir()
    for name, text in (("lazy", LAZY), ("widths", WIDTH), ("eos", EOS)):
        (tmp_path / "studies" / f"{name}.toml").write_text(text)
    (tmp_path / "paper").mkdir()
    shutil.copy(REPO / "paper" / "recipes.py", tmp_path / "paper" / "recipes.py")
    (tmp_path / "paper" / "paper.toml").write_text(_paper_toml("recipes.py"))
    fake_paper_cells.CALLS.clear()
    return tmp_path / "paper"


def _build(paper_dir: Path, **kwargs):
    return build(load_paper(paper_dir / "paper.toml"), workers=1, cell_fn=paper_cell, **kwargs)


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_writes_every_output_with_provenance_and_a_rebuild_writes_nothing(paper_dir: Path) -> None:
    written = _build(paper_dir)
    build_dir = paper_dir / "build"
    assert [w.name for w in written] == ["lazy_vs_rich", "width_convergence", "edge_of_stability", "eos_sharpness", "lazy_table"]
    assert all(all(w.files.values()) for w in written)  # everything new
    # 18 + 12 + 3 cells, each study computed once although two outputs use it
    assert len(fake_paper_cells.CALLS) == 18 + 12 + 3
    for name in ("lazy_vs_rich", "width_convergence", "edge_of_stability"):
        png = (build_dir / "figures" / f"{name}.png").read_bytes()
        pdf = (build_dir / "figures" / f"{name}.pdf").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and pdf[:5] == b"%PDF-"
        sidecar = json.loads((build_dir / "figures" / f"{name}.provenance.json").read_text())
        assert sidecar["files"][f"{name}.png"] == hashlib.sha256(png).hexdigest()
        assert sidecar["draft"] is None and sidecar["failed_cells"] == 0
        assert set(sidecar["versions"]) >= {"genlab", "torch", "numpy", "matplotlib", "sympy"}
        assert "git" in sidecar
    sidecar = json.loads((build_dir / "figures" / "lazy_vs_rich.provenance.json").read_text())
    study = parse(study_data(load_paper(paper_dir / "paper.toml"), load_paper(paper_dir / "paper.toml").figures[0], draft=False))
    assert sidecar["study_hash"] == hashlib.sha256("\n".join(sorted(c.id for c in study.cells)).encode()).hexdigest()[:16]
    assert sidecar["cells"] == 18
    for name in ("eos_sharpness", "lazy_table"):
        assert (build_dir / "tables" / f"{name}.tex").read_text().startswith(r"\begin{table}")
        assert (build_dir / "tables" / f"{name}.md").is_file()

    before = _snapshot(build_dir)
    again = _build(paper_dir)
    assert not any(wrote for w in again for wrote in w.files.values())
    assert len(fake_paper_cells.CALLS) == 33  # every cell read back from the cache
    assert _snapshot(build_dir) == before  # same bytes, same modification times: nothing rewritten


def test_draft_build_reuses_the_full_grid_cells_and_marks_itself(paper_dir: Path) -> None:
    _build(paper_dir, only=["lazy_vs_rich"])
    assert len(fake_paper_cells.CALLS) == 18
    written = _build(paper_dir, only=["lazy_vs_rich"], draft=True)
    assert len(fake_paper_cells.CALLS) == 18  # the 2 x 2 x 1 draft cells are a subset: copied, not computed
    assert [w.name for w in written] == ["lazy_vs_rich"]
    sidecar = json.loads((paper_dir / "build" / "figures" / "lazy_vs_rich.provenance.json").read_text())
    assert sidecar["cells"] == 4
    assert sidecar["draft"]["grid"] == {"alpha": [0.1, 10.0], "width": [16, 256], "seed": [0]}
    assert len(list((paper_dir / "build" / "runs" / "lazy-draft" / "cells").glob("*.json"))) == 4


def test_full_build_after_a_draft_computes_only_the_cells_the_draft_lacks(paper_dir: Path) -> None:
    _build(paper_dir, only=["lazy_vs_rich"], draft=True)
    assert len(fake_paper_cells.CALLS) == 4
    _build(paper_dir, only=["lazy_vs_rich"])
    assert len(fake_paper_cells.CALLS) == 4 + 18 - 4  # the draft's 4 cells are copied from its run folder


def test_lazy_vs_rich_figure_draws_the_seed_means_and_the_collapse(paper_dir: Path) -> None:
    from genlab.paper import run_study

    paper = load_paper(paper_dir / "paper.toml")
    recipes = __import__("genlab.paper", fromlist=["load_recipes"]).load_recipes(paper)
    results = run_study(paper, paper.figures[0], draft=False, workers=1, cell_fn=paper_cell)
    figure = recipes.lazy_vs_rich(results)
    ax_drift, ax_mse, ax_collapse = figure.axes
    assert ax_drift.get_xscale() == ax_drift.get_yscale() == "log" and ax_collapse.get_yscale() == "log"
    assert ax_drift.get_xlabel() and ax_mse.get_ylabel() == "test MSE"
    # seed mean of 0.5 / (alpha sqrt(w)) (1 + 0.1 seed) over seeds 0 and 1: factor 1.05
    alphas = np.array([0.1, 1.0, 10.0])
    for width in (16, 64, 256):
        expected = 0.5 / (alphas * np.sqrt(width)) * 1.05
        # the collapse panel's x is alpha sqrt(width), its y the seed mean
        xs = alphas * np.sqrt(width)
        found = [line for line in ax_collapse.lines if line.get_marker() == "o" and len(line.get_xdata()) == 3 and np.allclose(np.asarray(line.get_xdata(), dtype=float), xs)]
        assert found, f"no series at alpha sqrt({width})"
        np.testing.assert_allclose(np.asarray(found[0].get_ydata(), dtype=float), expected, rtol=1e-12)  # float arithmetic only
    # all widths collapse onto one curve y = 0.525 / x in the third panel
    for line in ax_collapse.lines:
        if line.get_marker() == "o":  # the measured markers (not the error-bar caps)
            np.testing.assert_allclose(np.asarray(line.get_ydata(), dtype=float) * np.asarray(line.get_xdata(), dtype=float), 0.525, rtol=1e-12)
    # the theory (NTK prediction 1.0) is drawn as a line in the test-MSE panel
    assert any(line.get_linestyle() == "-" and len(line.get_ydata()) == 3 and np.allclose(line.get_ydata(), 1.0)
               for line in ax_mse.lines)


def test_width_convergence_figure_reports_the_fitted_exponents(paper_dir: Path) -> None:
    from genlab.paper import load_recipes, run_study

    paper = load_paper(paper_dir / "paper.toml")
    results = run_study(paper, paper.figures[1], draft=False, workers=1, cell_fn=paper_cell)
    figure = load_recipes(paper).width_convergence(results)
    texts = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    # closed forms: drift and linearization ~ width^-1/2, weight change and the MSE gap ~ width^-1
    assert "NTK drift (slope -0.50)" in texts
    assert "relative weight change (slope -1.00)" in texts
    assert "distance to linearized net (slope -0.50)" in texts
    assert "|test MSE - NTK|/NTK (slope -1.00)" in texts
    assert figure.axes[0].get_xscale() == "log" and figure.get_size_inches()[0] == pytest.approx(3.3)


def test_edge_of_stability_outputs_carry_two_over_lr(paper_dir: Path) -> None:
    _build(paper_dir, only=["edge_of_stability", "eos_sharpness"])
    tex = (paper_dir / "build" / "tables" / "eos_sharpness.tex").read_text()
    eta = sympy.symbols("eta", positive=True)
    # the caption carries the closed form as sympy prints it (independently built here)
    assert f"$= {sympy.latex(2 / eta)}$" in tex and r"\frac{2}{\eta}" in tex
    assert r"sharpness\_late, sharpness\_max" in tex  # grouped: one expression, two quantities
    md = (paper_dir / "build" / "tables" / "eos_sharpness.md").read_text()
    assert "| 0.2 | sharpness_late | 10 | 10.1 |" in md  # theory 2/0.2 = 10, measured 1.01 x 10
    from genlab.paper import load_recipes, run_study

    paper = load_paper(paper_dir / "paper.toml")
    results = run_study(paper, paper.figures[2], draft=False, workers=1, cell_fn=paper_cell)
    ax = load_recipes(paper).edge_of_stability(results).axes[0]
    horizontal = sorted(line.get_ydata()[0] for line in ax.lines if len(line.get_ydata()) == 2)
    np.testing.assert_allclose(horizontal, [2 / 0.4, 2 / 0.2, 2 / 0.1])


def test_a_changed_recipe_rewrites_only_its_outputs(paper_dir: Path) -> None:
    _build(paper_dir)
    build_dir = paper_dir / "build"
    before = _snapshot(build_dir)
    recipes = paper_dir / "recipes.py"
    recipes.write_text(recipes.read_text().replace('ax.set_xlabel("GD step")', 'ax.set_xlabel("GD step t")'))
    written = {w.name: w for w in _build(paper_dir)}
    assert all(written["edge_of_stability"].files.values())
    assert not any(wrote for name, w in written.items() if name != "edge_of_stability" for wrote in w.files.values())
    after = _snapshot(build_dir)
    changed = sorted(k for k in after if before.get(k) != after[k] and not k.startswith("runs"))
    assert changed == ["figures/edge_of_stability.pdf", "figures/edge_of_stability.png",
                       "figures/edge_of_stability.provenance.json"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('recipe = "lazy_vs_rich"', 'recipe = "lazy_vs_rich"\ncolour = "red"'),
         r"figure\[0\]\.colour: Extra inputs are not permitted"),
        (lambda t: t.replace('name = "lazy_table"', 'name = "lazy_vs_rich"'), r"table\[1\]\.name: duplicate output name"),
        (lambda t: t.replace('study = "studies/eos.toml"', 'study = "studies/nope.toml"', 1), r"figure\[2\]\.study: no such file"),
        (lambda t: t.replace('recipes = "recipes.py"', 'recipes = "missing.py"'), r"recipes: no such file"),
    ],
)
def test_bad_paper_config_is_one_line_naming_the_key(paper_dir: Path, edit, message: str) -> None:
    path = paper_dir / "paper.toml"
    path.write_text(edit(path.read_text()))
    with pytest.raises(PaperConfigError, match=message):
        load_paper(path)


def test_cli_paper_bad_arguments_exit_2(paper_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["paper", "--config", str(paper_dir / "paper.toml"), "--only", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--only: no figure or table named 'nope'" in err
    assert not (paper_dir / "build" / "figures").exists()
    bad = paper_dir / "paper.toml"
    bad.write_text(bad.read_text().replace("[figure.draft]\ngrid = { alpha", "[figure.draft]\ngrid = { beta"))
    assert main(["paper", "--config", str(bad), "--draft"]) == 2
    assert "draft.grid.beta: not a grid key" in capsys.readouterr().err


def test_shipped_paper_toml_names_existing_recipes_and_draft_subsets() -> None:
    """Every shipped entry validates, names a recipe of paper/recipes.py, and a draft that only
    narrows the grid picks values of the full grid (so that it reuses the full run's cells)."""
    from genlab.paper import load_recipes

    paper = load_paper(REPO / "paper" / "paper.toml")
    recipes = load_recipes(paper)
    assert paper.figures and paper.tables
    for _, entry in paper.entries():
        assert callable(getattr(recipes, entry.recipe, None)), entry.name
        full = study_data(paper, entry, draft=False)
        draft = study_data(paper, entry, draft=True)
        parse(draft, source=entry.study)  # the draft variant validates
        for key, values in entry.draft.grid.items():
            assert set(values) <= set(full["grid"][key]), (entry.name, key)
        assert draft["grid"] != full["grid"] or entry.draft.train or not entry.draft.grid
