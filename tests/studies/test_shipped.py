"""The shipped studies, on reduced grids, and the scientific claims they make.

Each test loads the shipped TOML, keeps its task, model and training settings, shrinks only the
grid, runs it for real (run_cell: training plus neural-tangents), and asserts the hypothesis in
the study's description. Thresholds come from the full runs measured when the studies were
written (numbers in each test's docstring); they leave margins of ~2x on the measured effects.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genlab.study import Results, parse
from genlab.study._grid import RESULT_COLUMNS
from genlab.study.analysis import crossover, kendall_tau, loglog_slope

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def run_reduced(name: str, tmp_path: Path, grid: dict | None = None) -> Results:
    data = tomllib.loads((STUDIES / f"{name}.toml").read_text(encoding="utf-8"))
    if grid is not None:
        data["grid"] = grid
        data.pop("table", None)  # the table layout names the full grid's keys
    results = parse(data, source=f"{name}.toml (reduced)").run(out=tmp_path / name, workers=2)
    assert not results.failed, results.error(results.failed[0])
    return results


def side(results: Results, quantity: str, which: str = "empirical") -> pd.Series:
    """One quantity's theory or empirical values, indexed by the swept parameters."""
    rows = results.rows[results.rows["quantity"] == quantity]
    keys = [c for c in rows.columns if c not in RESULT_COLUMNS]
    return rows.set_index(keys)[which].astype(float)


def test_quickstart_shows_both_regimes(tmp_path: Path) -> None:
    """Measured (lazy_vs_rich at width 256, seeds 0-1): alpha = 30: drift 0.0016, CKA 1, test MSE
    0.429 vs NTK 0.386 (+11%); alpha = 0.1: drift 2.6, CKA 0.89, test MSE 0.330 (beats both the
    NTK prediction and the lazy network)."""
    results = run_reduced("quickstart", tmp_path)
    drift, cka, mse = side(results, "ntk_drift"), side(results, "feature_cka"), side(results, "test_mse")
    ntk_mse = side(results, "test_mse", "theory")
    assert drift[30.0] < 0.01 and cka[30.0] > 0.9999
    assert abs(mse[30.0] / ntk_mse[30.0] - 1) < 0.2
    assert drift[0.1] > 1.0 and cka[0.1] < 0.95
    assert mse[0.1] < ntk_mse[0.1] and mse[0.1] < mse[30.0]
    assert set(results.rows[results.rows["alpha"] == 30.0]["regime"]) == {"kernel"}


@pytest.fixture(scope="module")
def lazy_vs_rich(tmp_path_factory: pytest.TempPathFactory) -> Results:
    grid = {"alpha": [0.1, 0.3, 1.0, 3.0, 30.0, 100.0], "width": [64, 256]}
    return run_reduced("lazy_vs_rich", tmp_path_factory.mktemp("lvr"), grid)


def test_lazy_vs_rich_regimes(lazy_vs_rich: Results) -> None:
    """Full study (2 seeds): at alpha = 100 drift <= 0.0015 and the lazy net's test MSE is +31%,
    +11%, +4% above the NTK prediction at widths 64, 256, 1024; at alpha = 0.1 drift 5.7 / 2.6 / 1.1,
    CKA 0.76 / 0.89 / 0.97, and test MSE 0.413 / 0.330 / 0.326 against 0.506 / 0.430 / 0.402 for
    the lazy net at the same width."""
    drift = side(lazy_vs_rich, "ntk_drift")
    cka = side(lazy_vs_rich, "feature_cka")
    mse, ntk_mse = side(lazy_vs_rich, "test_mse"), side(lazy_vs_rich, "test_mse", "theory")
    for width in (64, 256):
        assert drift[(30.0, width)] < 0.1 and drift[(100.0, width)] < 0.1
        assert drift[(0.1, width)] > 1.0 and cka[(0.1, width)] < 0.95
        assert mse[(0.1, width)] < mse[(100.0, width)]
    lazy_gap = {w: abs(mse[(100.0, w)] / ntk_mse[(100.0, w)] - 1) for w in (64, 256)}
    assert lazy_gap[256] < lazy_gap[64] and lazy_gap[256] < 0.2


def test_lazy_vs_rich_crossover_scaling(lazy_vs_rich: Results) -> None:
    """alpha*(width), where the drift falls below 0.1: Geiger et al. 2020 predict width^-1/2.
    Full study: alpha* = 2.15, 0.92, 0.46 at widths 64, 256, 1024, slope -0.55. Deep in the lazy
    regime the drift at fixed alpha falls faster, ~ width^-0.9 (Dyer & Gur-Ari 2020: O(1/width)
    for smooth activations), because near the crossover the drift falls like alpha^-1.4 rather
    than alpha^-1. The bands are wide enough for 2 widths and one seed, narrow enough to tell
    -1/2 from -1."""
    drift = side(lazy_vs_rich, "ntk_drift")
    alphas = [0.1, 0.3, 1.0, 3.0, 30.0, 100.0]
    stars = [crossover(alphas, [drift[(a, w)] for a in alphas], 0.1) for w in (64, 256)]
    assert all(np.isfinite(stars)), stars
    assert -0.8 < loglog_slope([64, 256], stars) < -0.3, stars
    lazy = [drift[(30.0, w)] for w in (64, 256)]
    assert -1.2 < loglog_slope([64, 256], lazy) < -0.7, lazy


def test_width_convergence_slopes(tmp_path: Path) -> None:
    """Full study (widths 64-4096, 3 seeds): log-log slopes -0.90 (NTK drift), -1.03 (weight
    change), -1.05 (linearization distance); the test-MSE gap to the NTK prediction falls from
    72% at width 64 to 1-3% from width 1024 on (its seed noise). Reduced here to widths 64-512 and
    one seed (slopes measured -0.8, -1.06, -1.07); the bands allow one seed's noise and exclude
    the -1/2 of the O(width^-1/2) bounds for the weights and the linearization."""
    widths = [64, 128, 256, 512]
    results = run_reduced("width_convergence", tmp_path, {"width": widths, "seed": [0]})
    values = {q: side(results, q) for q in ("ntk_drift", "weight_change", "linearization_distance")}
    slopes = {q: loglog_slope(widths, [v[(w, 0)] for w in widths]) for q, v in values.items()}
    assert -1.3 < slopes["ntk_drift"] < -0.55, slopes
    assert -1.3 < slopes["weight_change"] < -0.75, slopes
    assert -1.4 < slopes["linearization_distance"] < -0.75, slopes
    mse, ntk_mse = side(results, "test_mse"), side(results, "test_mse", "theory")
    gaps = [abs(mse[(w, 0)] / ntk_mse[(w, 0)] - 1) for w in widths]
    assert gaps[-1] < 0.5 * gaps[0], gaps


def test_real_cells_are_deterministic(tmp_path: Path) -> None:
    """Same config and seeds, two fresh run directories: identical results.csv, byte for byte
    (training, neural-tangents kernels and measurements are all seeded)."""
    grid = {"alpha": [0.3]}
    first = run_reduced("quickstart", tmp_path / "a", grid)
    second = run_reduced("quickstart", tmp_path / "b", grid)
    assert (first.run_dir / "results.csv").read_bytes() == (second.run_dir / "results.csv").read_bytes()


def test_edge_of_stability_sharpness_hovers_at_two_over_lr(tmp_path: Path) -> None:
    """Cohen et al. 2021. Measured (1000 steps, digits, erf net): late-phase sharpness 10.14 at
    lr = 0.2 (2/lr = 10, +1.4%) and 5.15 at lr = 0.4 (2/lr = 5, +3.0%); at lr = 0.2 the sharpness
    first drops from 15.8 to 9.05 (catapult) and then sharpens progressively to 11.4 (+26%) before
    settling. Reduced to 500 steps; band 10% (EOS_BAND), sharpening asserted as a > 10% rise."""
    results = run_reduced("edge_of_stability", tmp_path, {"lr": [0.2, 0.4], "steps": [500]})
    late, threshold = side(results, "sharpness_late"), side(results, "sharpness_late", "theory")
    for key in late.index:
        assert abs(late[key] / threshold[key] - 1) < 0.1, (key, late[key], threshold[key])
    assert side(results, "steps_to_eos").notna().all()
    cells = results.cells.set_index("cell")
    curves = {cells.loc[ident, "lr"]: np.asarray(c["sharpness"]["empirical"]) for ident, c in results.curves.items()}
    sharp = curves[0.2]
    lowest = int(np.argmin(sharp))
    assert sharp[lowest:].max() > 1.1 * sharp[lowest], sharp


def test_sharpness_vs_generalization(tmp_path: Path) -> None:
    """Full study (12 cells): every final sharpness is at or below 2/lr (max ratio 1.0007, at
    lr 0.2, batch 256), larger batches end sharper at each lr (Keskar et al. 2017; e.g. 10.78 /
    13.07 / 13.84 at lr 0.1 for batches 16 / 64 / 256), and Kendall tau with the generalization
    gap is 0.76 for the Hessian trace and 0.33 for the sharpness. Reduced to lr {0.1, 0.2} x batch
    {16, 256}: trace-gap tau measured 0.67 (one discordant pair of six)."""
    results = run_reduced("sharpness_vs_generalization", tmp_path, {"lr": [0.1, 0.2], "batch_size": [16, 256]})
    sharp, bound = side(results, "sharpness"), side(results, "sharpness", "theory")
    assert (sharp <= 1.05 * bound).all(), (sharp, bound)
    for lr in (0.1, 0.2):
        assert sharp[(lr, 256)] > sharp[(lr, 16)]
    trace, gap = side(results, "hessian_trace"), side(results, "generalization_gap")
    assert kendall_tau(trace.values, gap[trace.index].values) > 0
