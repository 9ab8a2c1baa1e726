"""Landscape quantities measured through a cell: trajectory statistics from the snapshot hook."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.empirical import landscape
from genlab.study._cell import run_cell

CELL = {
    "task": {"name": "teacher_student", "seed": 0, "n_train": 32, "n_test": 16, "d": 4},
    "model": {"kind": "fc", "depth": 1, "activation": "gelu", "width": 16, "b_std": 0.1},
    "train": {"optimizer": "gd", "lr": 0.5, "steps": 60, "measure_every": 10},
    "quantities": ["path_length", "distance_from_init", "trajectory_pca_variance", "train_loss"],
}


def test_trajectory_quantities_from_a_real_run() -> None:
    """Path length >= distance (triangle inequality), both > 0, and the top-2 PCA share in (0, 1];
    with momentum-free GD on a smooth loss the path is close to straight (share > 0.9)."""
    values = {row.quantity: row.empirical for row in run_cell(CELL).rows}
    assert values["path_length"] >= values["distance_from_init"] > 0
    assert 0.9 < values["trajectory_pca_variance"] <= 1.0 + 1e-12


def test_snapshot_budget_keeps_every_kth_step(monkeypatch) -> None:
    """Room for 3 snapshots, 11 measured steps (0, 10, ..., 100): every ceil(11 / 3) = 4th one,
    plus the last."""
    from genlab.empirical import TrainSettings
    from genlab.models import ArchSpec

    net = ArchSpec(depth=1).to_torch(8, input_shape=(3,), seed=0)
    size = sum(p.numel() for p in net.parameters())
    monkeypatch.setattr(landscape, "SNAPSHOT_BUDGET", 3 * size)
    settings = TrainSettings(steps=100, measure_every=10)
    hook = landscape.trajectory_hook(net, np.zeros((4, 3)), np.zeros((4, 1)), settings)
    kept = [step for step in range(0, 101, 10) if hook(step, net)]
    assert kept == [0, 40, 80, 100]


SHAPE_CELL = {
    "task": {"name": "teacher_student", "seed": 0, "n_train": 32, "n_test": 16, "d": 4},
    "model": {"kind": "fc", "depth": 1, "activation": "gelu", "width": 16, "b_std": 0.1},
    "train": {"optimizer": "sgd", "lr": 0.3, "steps": 60, "batch_size": 8, "measure_every": 20},
    "quantities": ["sharpness", "nonuniformity", "sgd_stability", "spectral_density", "interpolation_barrier",
                   "loss_plane", "train_loss", "train_loss_curve"],
}


def test_landscape_shape_quantities_of_a_real_sgd_run() -> None:
    """The stability factor is the formula of Wu et al. (2018) in the measured a and s; the
    theory side is the bound 1 and s_max = sqrt(B (n-1) / (n-B)) / lr; the init-to-end line
    starts at the initial loss and ends at the final one; the plane's centre is the solution."""
    out = run_cell(SHAPE_CELL)
    theory = {row.quantity: row.theory for row in out.rows}
    values = {row.quantity: row.empirical for row in out.rows}
    lr, n, batch = 0.3, 32, 8
    a, s = values["sharpness"], values["nonuniformity"]
    expected = (1 - lr * a) ** 2 + lr**2 * (n - batch) / (batch * (n - 1)) * s**2
    # a and s come from ARPACK at tol 1e-3 (separate runs for the factor and for the rows):
    # a 1e-3 relative error on each moves the factor by about 2e-3 of its terms.
    assert values["sgd_stability"] == pytest.approx(expected, rel=5e-3, abs=5e-3)
    assert theory["sgd_stability"] == 1.0
    assert theory["nonuniformity"] == pytest.approx(np.sqrt(batch * (n - 1) / (n - batch)) / lr, rel=1e-12)
    assert 0.0 <= values["spectral_density"] <= 1.0
    density = out.curves["spectral_density"]
    assert np.trapezoid(density["empirical"], density["empirical_eigenvalue"]) == pytest.approx(1.0, abs=1e-9)
    # The broadened density's support reaches the sharpness (the top Ritz value converges first).
    assert max(density["empirical_eigenvalue"]) >= a * (1 - 1e-3)
    line = out.curves["interpolation_barrier"]
    losses = out.curves["train_loss_curve"]["empirical"]
    assert line["empirical_t"][0] == 0.0 and line["empirical_t"][-1] == 1.0
    assert line["empirical"][0] == pytest.approx(losses[0], rel=1e-10)
    assert line["empirical"][-1] == pytest.approx(losses[-1], rel=1e-10)
    assert values["interpolation_barrier"] >= 0.0
    plane = out.arrays["loss_plane"]
    assert plane.shape == (landscape.PLANE_POINTS, landscape.PLANE_POINTS)
    assert plane[landscape.PLANE_POINTS // 2, landscape.PLANE_POINTS // 2] == pytest.approx(losses[-1], rel=1e-10)
    assert values["loss_plane"] == pytest.approx(plane.mean() - losses[-1], rel=1e-10)


def test_gd_stability_factor_is_the_eos_quadratic_factor() -> None:
    """At full batch the noise term vanishes: (1 - lr a)^2, and no non-uniformity bound."""
    cell = {**SHAPE_CELL, "train": {"optimizer": "gd", "lr": 0.3, "steps": 40, "measure_every": 20},
            "quantities": ["sharpness", "sgd_stability", "nonuniformity"]}
    out = run_cell(cell)
    theory = {row.quantity: row.theory for row in out.rows}
    values = {row.quantity: row.empirical for row in out.rows}
    assert values["sgd_stability"] == pytest.approx((1 - 0.3 * values["sharpness"]) ** 2, rel=5e-3, abs=5e-3)
    assert theory["nonuniformity"] is None and theory["sgd_stability"] == 1.0
