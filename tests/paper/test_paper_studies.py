"""Paper recipes of the implicit-bias, generalization and landscape studies (diag_linear_bias,
learning_curves, nn_vs_kernel, sgd_linear_stability, max_margin) on the shipped study configs
with small grids, run by a closed-form fake cell (tests/paper/fake_study_cells.py, no torch):
every drawn number is checked against the formula that made it or an independent reference.
(The trajectories recipe needs real stored trajectories: it is built by ``genlab paper --draft``.)
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import sympy

from genlab.paper import closed_form_caption, load_paper, load_recipes, table_latex
from genlab.study import Results, parse
from tests.paper.fake_study_cells import MARGIN_LOG10_STEPS, margin_cosine_curve, study_cell

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def recipes():
    return load_recipes(load_paper(REPO / "paper" / "paper.toml"))


def run_fake(name: str, tmp_path: Path, grid: dict, task: dict | None = None) -> Results:
    """The shipped study ``name`` with ``grid`` (and ``task`` keys) replaced, run by the fake cell."""
    data = tomllib.loads((REPO / "studies" / f"{name}.toml").read_text(encoding="utf-8"))
    data["grid"] = grid
    data["task"].update(task or {})
    data.pop("table", None)
    results = parse(data, source=f"{name}.toml (paper test)").run(out=tmp_path / name, workers=1, cell_fn=study_cell)
    assert not results.failed
    return results


def _markers(ax) -> list:
    """The measured series: lines drawn with a marker and no line style (errorbar's data line)."""
    return [line for line in ax.lines
            if line.get_marker() not in ("None", "", None, "_", "|") and line.get_linestyle() == "None"]  # not the caps


def _xy(line) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)


def test_diag_linear_bias_draws_q_alpha_and_the_min_l1_min_l2_references(tmp_path: Path, recipes) -> None:
    from scipy.optimize import linprog, minimize

    from genlab.tasks import make_task

    task_keys = {"n_train": 8, "d": 20, "k": 2, "n_test": 10}
    results = run_fake("diag_linear_bias", tmp_path, {"w_std": [0.03, 0.3, 1.0], "seed": [0, 1]}, task_keys)
    fig = recipes.diag_linear_bias(results)
    ax_l1, ax_l2 = fig.axes
    assert ax_l2.get_xscale() == "log" and ax_l1.get_ylabel() and ax_l2.get_xlabel()
    # markers: seed means of (1 + w_std)(1 + 0.1 seed) over seeds 0, 1 -> (1 + w_std) 1.05
    for ax in (ax_l1, ax_l2):
        (marker,) = _markers(ax)
        x, y = _xy(marker)
        np.testing.assert_allclose(x, [0.03, 0.3, 1.0])
        np.testing.assert_allclose(y, (1 + x) * 1.05, rtol=1e-12)  # float arithmetic only
    # independent references on the same task: min-l1 as the LP over (beta, t) with |beta| <= t
    # (the library solves the split form beta = p - m), min-l2 from numpy's least squares
    task = make_task("sparse_linear_regression", seed=0, **{**task_keys, "noise": 0.0})
    x, y = np.asarray(task.x_train, float), np.asarray(task.y_train, float).reshape(-1)
    d = x.shape[1]
    eye = np.eye(d)
    lp = linprog(np.r_[np.zeros(d), np.ones(d)], A_ub=np.block([[eye, -eye], [-eye, -eye]]), b_ub=np.zeros(2 * d),
                 A_eq=np.hstack([x, np.zeros_like(x)]), b_eq=y, bounds=(None, None), method="highs-ipm")
    beta_l1 = lp.x[:d]
    beta_l2 = np.linalg.lstsq(x, y, rcond=None)[0]
    for ax, order in ((ax_l1, 1), (ax_l2, 2)):
        levels = sorted(line.get_ydata()[0] for line in ax.lines if len(line.get_ydata()) == 2)
        # interior-point LP optimum to ~1e-7; lstsq exact to rounding
        np.testing.assert_allclose(levels, sorted([np.linalg.norm(beta_l1, order), np.linalg.norm(beta_l2, order)]), rtol=1e-6)
    # the theory line: argmin Q_alpha s.t. X beta = y solved here by SLSQP on the primal (the
    # library solves the dual by Newton); SLSQP stops at ftol 1e-12, norms agree to ~1e-4
    (theory,) = [line for line in ax_l1.lines if line.get_linestyle() == "-" and len(line.get_xdata()) > 10]
    (theory_l2,) = [line for line in ax_l2.lines if line.get_linestyle() == "-" and len(line.get_xdata()) > 10]
    alphas, l1_line = _xy(theory)
    for k in (10, 30):
        a = alphas[k]
        q = lambda b: float(np.sum(a**2 * (2 - np.sqrt(4 + (b / a**2) ** 2) + (b / a**2) * np.arcsinh(b / (2 * a**2)))))  # noqa: E731
        grad = lambda b: np.arcsinh(b / (2 * a**2))  # noqa: E731
        res = minimize(q, beta_l2, jac=grad, constraints={"type": "eq", "fun": lambda b: x @ b - y, "jac": lambda b: x},
                       method="SLSQP", options={"ftol": 1e-14, "maxiter": 2000})
        assert res.success, res.message
        assert l1_line[k] == pytest.approx(np.abs(res.x).sum(), rel=1e-4)
        assert _xy(theory_l2)[1][k] == pytest.approx(np.linalg.norm(res.x), rel=1e-4)
    table = recipes.diag_linear_bias_table(results)
    np.testing.assert_allclose(table.frame["$\\|\\beta\\|_1$ ($Q_\\alpha$)"], [1.03, 1.3, 2.0], rtol=1e-12)
    np.testing.assert_allclose(table.frame["$\\|\\beta\\|_1$ (GD)"], np.array([1.03, 1.3, 2.0]) * 1.05, rtol=1e-12)
    # Q_alpha's coordinate potential as sympy prints it, built here from Woodworth et al.'s q(z)
    alpha, beta = sympy.Symbol("alpha", positive=True), sympy.Symbol("beta", real=True)
    z = beta / alpha**2
    q_alpha = alpha**2 * (2 - sympy.sqrt(4 + z**2) + z * sympy.asinh(z / 2))
    assert table.closed_forms == {"q_alpha": sympy.latex(q_alpha)}


def test_learning_curves_panels_and_the_double_descent_break(tmp_path: Path, recipes) -> None:
    grid = {"model.depth": [0, 1], "n_train": [4, 8, 12, 24, 64], "task.seed": [0, 1]}
    results = run_fake("learning_curves", tmp_path, grid, {"n_test": 10})
    fig = recipes.learning_curves(results)
    ax1, ax0 = fig.axes
    assert "depth 1" in ax1.get_title(loc="left") and "depth 0" in ax0.get_title(loc="left")
    n = np.array([4, 8, 12, 24, 64], float)
    for ax in (ax0, ax1):
        assert ax.get_xscale() == ax.get_yscale() == "log"
        kernel, network = _markers(ax)
        np.testing.assert_allclose(_xy(network)[1], 4.4 / n * 1.05, rtol=1e-12)
        np.testing.assert_allclose(_xy(kernel)[0], n)
    np.testing.assert_allclose(_xy(_markers(ax1)[0])[1], 4 / n * 1.05, rtol=1e-12)
    np.testing.assert_allclose(_xy(_markers(ax0)[0])[1], (1 + 16 / np.abs(n - 16)) * 1.05, rtol=1e-12)
    # depth 0: the theory 1 + d/|P - d| diverges at P = d = 16, so its line stops on either side
    segments = [_xy(line) for line in ax0.lines if line.get_linestyle() == "-" and line.get_color() == "0.15"]
    assert len(segments) == 2
    (left_x, left_y), (right_x, right_y) = segments
    np.testing.assert_allclose(left_x, [4, 8, 12])
    np.testing.assert_allclose(right_x, [24, 64])
    np.testing.assert_allclose(np.r_[left_y, right_y], 1 + 16 / np.abs(n - 16), rtol=1e-12)
    assert any(np.allclose(line.get_xdata(), 16) for line in ax0.lines if len(line.get_xdata()) == 2)  # P = d marked
    (depth1_theory,) = [line for line in ax1.lines if line.get_linestyle() == "-" and line.get_color() == "0.15"]
    np.testing.assert_allclose(_xy(depth1_theory)[1], 4 / n, rtol=1e-12)


def test_nn_vs_kernel_keeps_one_colour_per_method_and_tabulates_the_means(tmp_path: Path, recipes) -> None:
    results = run_fake("nn_vs_kernel", tmp_path, {"d": [8, 12], "n_train": [32, 128]}, {"n_test": 10})
    fig = recipes.nn_vs_kernel(results)
    panels = fig.axes
    assert len(panels) == 2 and all(ax.get_xscale() == ax.get_yscale() == "log" for ax in panels)
    n = np.array([32, 128], float)
    expected = {"trained network": 1 / n, "NTK at init": 2.5 / n, "NNGP (256 random features)": 3.5 / n,
                "after-kernel": 1.5 / n, "analytic NTK": 2 / n, "analytic NNGP": 3 / n}
    colours: dict[str, tuple] = {}
    for ax in panels:
        handles, labels = ax.get_legend_handles_labels()
        assert set(labels) == set(expected)
        for handle, label in zip(handles, labels):
            line = handle.lines[0] if hasattr(handle, "lines") else handle  # errorbar containers hold the data line
            np.testing.assert_allclose(_xy(line)[1], expected[label], rtol=1e-12)
            colours.setdefault(label, line.get_color())
            assert line.get_color() == colours[label], label  # same colour for a method in every panel
    assert len({str(c) for c in colours.values()}) == 4  # one colour per method (theory lines share it)
    table = recipes.nn_vs_kernel_table(results)
    assert list(table.frame["d"]) == [8, 8, 12, 12] and list(table.frame["n"]) == [32, 128, 32, 128]
    np.testing.assert_allclose(table.frame["network"], [1 / 32, 1 / 128] * 2, rtol=1e-12)
    np.testing.assert_allclose(table.frame["NTK (analytic)"], [2 / 32, 2 / 128] * 2, rtol=1e-12)
    np.testing.assert_allclose(table.frame["1/d"], [1 / 8, 1 / 8, 1 / 12, 1 / 12], rtol=1e-12)


def test_sgd_linear_stability_bounds_and_table_closed_forms(tmp_path: Path, recipes) -> None:
    results = run_fake("sgd_linear_stability", tmp_path, {"lr": [0.05, 0.1], "batch_size": [4, 32, 256]})
    fig = recipes.sgd_linear_stability(results)
    ax_a, ax_s = fig.axes
    horizontal = sorted(line.get_ydata()[0] for line in ax_a.lines if len(line.get_ydata()) == 2)
    np.testing.assert_allclose(horizontal, [2 / 0.1, 2 / 0.05])
    n = 256
    assert {line.get_linestyle() for line in ax_a.lines if len(line.get_ydata()) == 2} == {"--"}  # bounds: dashed
    bounds = [line for line in ax_s.lines if line.get_linestyle() == "--" and len(line.get_xdata()) > 3]
    assert len(bounds) == 2
    for line in bounds:  # sqrt(B (n - 1)/(n - B))/lr, here written out with numpy
        b, s = _xy(line)
        assert b.max() < n  # infinite at B = n: not drawn there
        lr = math.sqrt(b[0] * (n - 1) / (n - b[0])) / s[0]
        assert lr == pytest.approx(0.05) or lr == pytest.approx(0.1)
        np.testing.assert_allclose(s, np.sqrt(b * (n - 1) / (n - b)) / lr, rtol=1e-12)
    for marker in _markers(ax_s):
        b, s = _xy(marker)
        lr = 0.5 * math.sqrt(b[0]) / s[0]
        np.testing.assert_allclose(s, 0.5 * np.sqrt(b) / lr, rtol=1e-12)
    table = recipes.sgd_linear_stability_table(results)
    row = table.frame[(table.frame["lr"] == 0.1) & (table.frame["B"] == 32)].iloc[0]
    assert row["$s_{\\max}$"] == f"≤ {math.sqrt(32 * 255 / 224) / 0.1:.4g}" and row["$2/\\eta$"] == "≤ 20"
    assert row["stability factor (≤ 1)"] == pytest.approx((1 - 1.5) ** 2 + 0.01 * 224 / (32 * 255) * (0.5 * math.sqrt(32) / 0.1) ** 2)
    assert table.frame[table.frame["B"] == 256]["$s_{\\max}$"].eq("--").all()  # no bound at full batch
    # the caption's closed forms, rebuilt here with sympy independently of genlab.theory.landscape
    eta, a, s, n_, batch = sympy.symbols("eta a s n B", positive=True)
    factor = (1 - eta * a) ** 2 + eta**2 * (n_ - batch) / (batch * (n_ - 1)) * s**2
    caption = closed_form_caption(table.closed_forms)
    assert f"sgd_stability $= {sympy.latex(factor)}$" in caption
    assert f"nonuniformity $= {sympy.latex(sympy.sqrt(batch * (n_ - 1) / (n_ - batch)) / eta)}$" in caption
    tex = table_latex(table, name="t")
    assert r"\begin{tabular}" in tex and r"Wu, Ma \& E" in tex and r"\\&" not in tex  # "&" escaped once
    assert r"0.1 & 32 & " in tex and r" & $\le$ 20 & " in tex and r"stability factor ($\le$ 1)" in tex


def test_max_margin_curves_and_the_inverse_log_squared_rate(tmp_path: Path, recipes) -> None:
    results = run_fake("max_margin", tmp_path, {"d": [10, 30], "lr": [1.0, 10.0]}, {"n_test": 10})
    fig = recipes.max_margin(results)
    ax_c, ax_g = fig.axes
    assert ax_g.get_yscale() == "log" and "log_{10}" in ax_g.get_xlabel()
    curves = [line for line in ax_c.lines if len(line.get_xdata()) == len(MARGIN_LOG10_STEPS)]
    assert len(curves) == 4
    for line in curves:
        lr = float(line.get_label().rsplit("lr ", 1)[1])
        np.testing.assert_allclose(_xy(line)[1], margin_cosine_curve(lr), rtol=1e-12)
    assert any(np.allclose(line.get_ydata(), 1.0) for line in ax_c.lines if len(line.get_ydata()) == 2)  # the limit
    # the fake gap is exactly 0.5 / log(lr t)^2, so each dashed rate line lies on its curve
    dashed = [line for line in ax_g.lines if line.get_linestyle() == "--" and len(line.get_xdata()) > 2]
    gaps = [line for line in ax_g.lines if line.get_linestyle() == "-" and len(line.get_xdata()) > 2]
    assert len(dashed) == len(gaps) == 4
    for rate, gap in zip(dashed, gaps):
        np.testing.assert_allclose(_xy(rate)[1], _xy(gap)[1], rtol=1e-9)


def test_trajectories_recipe_projects_the_stored_paths_on_their_top_two_components(tmp_path: Path, recipes) -> None:
    """A real (torch) run of the shipped trajectories study, shrunk to 2 optimizers x 40 steps on
    64 digits images and width 16; the drawn paths are checked against an SVD done here."""
    from genlab.study._store import read_arrays

    data = tomllib.loads((REPO / "studies" / "trajectories.toml").read_text(encoding="utf-8"))
    data["grid"] = {"optimizer": ["sgd", "adam"], "batch_size": [32]}
    data["task"]["n_train"] = 64
    data["model"]["width"] = 16
    data["train"].update(steps=40, measure_every=10)
    data["quantities"] = ["train_loss", "trajectory_pca_variance"]
    data.pop("table", None)
    results = parse(data, source="trajectories.toml (paper test)").run(out=tmp_path / "t", workers=1)
    assert not results.failed
    fig = recipes.trajectories(results)
    ax = fig.axes[0]
    assert fig.get_size_inches()[0] == pytest.approx(3.3)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["sgd, B=32", "adam, B=32", "start", "end"]
    paths = [read_arrays(results.run_dir, cell.id)["trajectory"] for cell in results.study.cells]
    stacked = np.concatenate(paths)
    centred = stacked - stacked.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    drawn = {line.get_label(): np.c_[_xy(line)] for line in ax.lines if line.get_label() in ("sgd, B=32", "adam, B=32")}
    for label, path in zip(("sgd, B=32", "adam, B=32"), paths):
        expected = (path - stacked.mean(axis=0)) @ vt[:2].T
        signs = np.sign(np.sum(expected * drawn[label], axis=0))  # principal directions are defined up to sign
        np.testing.assert_allclose(drawn[label], expected * signs, atol=1e-8 * np.abs(expected).max())  # two SVDs of one matrix
