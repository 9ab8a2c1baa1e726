"""Views across cells: several optimizers' trajectories on one PCA plane, barriers between their
solutions, per-cell loss slices; checked against direct loss evaluations of rebuilt networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.cli import main
from genlab.empirical._slices import loss_at, trainable_parameters, unflat
from genlab.study import Results, parse
from genlab.study._cell import build_cell
from genlab.study import _schema
from genlab.study._store import read_arrays
from genlab.study.landscape_views import VIEWS, available_views, solution_barriers, trajectory_plane
from tests.study.conftest import REAL_TASK_REGISTRY

STUDY = {
    "name": "views",
    "description": "Two optimizers from one init, for the cross-cell views.",
    "quantities": ["trajectory_pca_variance", "train_loss", "loss_plane"],
    "task": {"name": "teacher_student", "seed": 0, "n_train": 32, "n_test": 16, "d": 4},
    "model": {"kind": "fc", "depth": 1, "activation": "gelu", "width": 8, "b_std": 0.1},
    "train": {"lr": 0.05, "steps": 40, "measure_every": 10, "batch_size": 8, "optimizer": "sgd"},
    "grid": {"optimizer": ["sgd", "adam"]},
}


@pytest.fixture(autouse=True)
def real_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """These views rebuild real tasks: undo tests/study's toy task registry."""
    monkeypatch.setattr(_schema, "_task_registry", REAL_TASK_REGISTRY)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Results:
    return parse(STUDY).run(out=tmp_path_factory.mktemp("views") / "run", workers=1)


def _loss(config: dict, flat_theta: np.ndarray) -> float:
    task, _, _, _, settings, module = build_cell(config)
    like = trainable_parameters(module)
    return loss_at(module, unflat(torch.as_tensor(flat_theta), like), task.x_train, task.y_train, loss=settings.loss)


def test_cells_store_their_trajectory_from_the_common_init(results: Results) -> None:
    starts = [read_arrays(results.run_dir, cell.id)["trajectory"][0] for cell in results.study.cells]
    np.testing.assert_array_equal(starts[0], starts[1])  # same seed: the same initial network (copied RNG draws)
    arrays = read_arrays(results.run_dir, results.study.cells[0].id)
    assert arrays["trajectory"].shape[0] == arrays["trajectory_step"].shape[0] == 5  # steps 0..40 by 10
    assert available_views(results) == ["trajectory_plane", "solution_barriers", "loss_planes"]


def test_shared_plane_reproduces_direct_losses(results: Results) -> None:
    """The plane's grid value at the centre is the loss at the mean snapshot; both paths start at
    one projected point; the explained shares are in (0, 1] and sum to at most 1."""
    view = trajectory_plane(results, points=5)
    paths = list(view.paths.values())
    np.testing.assert_allclose(paths[0][0], paths[1][0], atol=1e-12)
    assert 0 < view.explained[1] <= view.explained[0] and view.explained.sum() <= 1 + 1e-12
    stacked = np.concatenate([read_arrays(results.run_dir, c.id)["trajectory"] for c in results.study.cells])
    centre = _loss(results.study.cells[0].config, stacked.mean(axis=0))
    assert view.losses[2, 2] == pytest.approx(centre, rel=1e-10)  # odd grid: 0 is a grid point


def test_barrier_lines_end_at_each_solution(results: Results) -> None:
    """The line at t = 0, 1/2, 1 is the loss of the rebuilt network at end_a, the midpoint and
    end_b; the frame's barrier and distance are the explicit max above the chord of that line and
    ||end_a - end_b|| (float64 rounding of the same losses and norm: 1e-10 relative)."""
    frame, lines = solution_barriers(results, points=5)
    assert len(frame) == 1
    (a, b), losses = next(iter(lines.items()))
    cells = {c.id: c for c in results.study.cells}
    end_a, end_b = (read_arrays(results.run_dir, ident)["trajectory"][-1] for ident in (a, b))
    config = cells[a].config
    for value, point in ((losses[0], end_a), (losses[2], 0.5 * (end_a + end_b)), (losses[-1], end_b)):
        assert value == pytest.approx(_loss(config, point), rel=1e-10)
    t = np.linspace(0.0, 1.0, 5)
    chord = (1 - t) * losses[0] + t * losses[-1]
    assert frame["barrier"].iloc[0] == pytest.approx(float(np.max(losses - chord)), abs=1e-10 * float(np.max(losses)))
    assert frame["distance"].iloc[0] == pytest.approx(float(np.linalg.norm(end_a - end_b)), rel=1e-12)


def test_plot_saves_every_view(results: Results, capsys: pytest.CaptureFixture) -> None:
    assert main(["plot", str(results.run_dir)]) == 0
    for view in VIEWS:
        assert (Path(results.run_dir) / "figures" / f"{view}.png").stat().st_size > 0


def test_views_refuse_cells_of_different_models(tmp_path: Path) -> None:
    study = {**STUDY, "grid": {"width": [4, 8]}, "quantities": ["trajectory_pca_variance"]}
    mixed = parse(study).run(out=tmp_path / "mixed", workers=1)
    with pytest.raises(ValueError, match="differ in model or task"):
        trajectory_plane(mixed)
