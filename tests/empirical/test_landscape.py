"""Landscape quantities measured through a cell: trajectory statistics from the snapshot hook."""

from __future__ import annotations

import numpy as np

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
