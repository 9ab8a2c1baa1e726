"""The Ray executor on a real local Ray instance (num_cpus=2), shared by the tests of this
module: one Ray task per cell, results in the same run directory and cache as the local
executor, a killed worker retried. The cell functions count their calls in a folder fixed
before Ray starts (its workers inherit the environment then)."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from genlab.study import RayExecutor, parse
from tests.study import fault_cells
from tests.study.conftest import study_dict
from tests.study.fake_cells import COUNTER_ENV, calls, fake_cell

ray = pytest.importorskip("ray")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def ray_calls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray instance with 2 CPUs for this module; yields the (emptied per test) calls folder."""
    folder = tmp_path_factory.mktemp("ray_calls")
    saved = {k: os.environ.get(k) for k in (COUNTER_ENV, "PYTHONPATH")}
    os.environ[COUNTER_ENV] = str(folder)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), saved["PYTHONPATH"]]))  # workers import tests.*
    with warnings.catch_warnings():  # jax (imported by earlier tests) warns at any fork; Ray's exec at once
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield folder
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def counted(ray_calls: Path) -> Path:
    for item in ray_calls.iterdir():
        item.unlink() if item.is_file() else shutil.rmtree(item)
    return ray_calls


def test_ray_and_local_write_the_same_run_directory(counted: Path, tmp_path: Path) -> None:
    study = parse(study_dict())
    on_ray = study.run(out=tmp_path / "ray", executor="ray", cell_fn=fake_cell)
    assert calls(counted) == len(study.cells)
    local = study.run(out=tmp_path / "local", workers=1, cell_fn=fake_cell)
    pd.testing.assert_frame_equal(on_ray.rows, local.rows)
    for name in ("results.csv", "table.md"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "local" / name).read_bytes()
    provenance = json.loads((tmp_path / "ray" / "provenance.json").read_text())
    assert provenance["executor"] == "ray"


def test_a_study_started_locally_is_finished_on_ray_without_recomputing(counted: Path, tmp_path: Path) -> None:
    """Half the grid locally, then the whole grid on Ray: only the new half runs, on Ray."""
    half = parse(study_dict(grid={"alpha": [0.1], "width": [8, 16], "seed": [0, 1]}))
    half.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    full = parse(study_dict())
    results = full.run(out=tmp_path / "run", executor="ray", cell_fn=fake_cell)
    assert calls(counted) == len(full.cells)  # 4 locally + 4 on Ray
    assert int(results.cells["cached"].sum()) == len(half.cells)
    again = full.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)  # and back: nothing to do
    assert again.cells["cached"].all() and calls(counted) == len(full.cells)


def test_a_killed_ray_worker_is_retried(counted: Path, tmp_path: Path) -> None:
    """The worker process of each width-16 cell is SIGKILLed mid-cell on its first attempt;
    Ray retries the task and the study completes with every cell ok."""
    study = parse(study_dict(grid={"width": [8, fault_cells.VICTIM_WIDTH], "seed": [0, 1]}))
    results = study.run(out=tmp_path / "run", executor="ray", cell_fn=fault_cells.killed_once_cell)
    assert results.failed == []
    assert len(list(counted.glob("killed-*.marker"))) == 2
    assert calls(counted) == len(study.cells) + 2


def test_a_cell_that_always_kills_its_ray_worker_is_recorded_failed(counted: Path, tmp_path: Path) -> None:
    data = study_dict(grid={"width": [8, fault_cells.VICTIM_WIDTH], "seed": [0, 1]})
    data["resources"] = {"max_retries": 1}
    study = parse(data)
    results = study.run(out=tmp_path / "run", executor="ray", cell_fn=fault_cells.always_killed_cell)
    victims = {c.id for c in study.cells if c.params["model.width"] == fault_cells.VICTIM_WIDTH}
    assert set(results.failed) == victims
    assert all("worker process died on each of 2 attempts" in results.error(i) for i in victims)
    assert calls(counted) == 2 + 2 * 2  # two healthy cells once, two victims twice
    ok = results.rows[results.rows["width"] == 8]
    assert (ok["regime"] != "error").all()


def test_a_raising_cell_on_ray_is_not_retried(counted: Path, tmp_path: Path) -> None:
    study = parse(study_dict(grid={"width": [8, fault_cells.VICTIM_WIDTH]}))
    results = study.run(out=tmp_path / "run", executor="ray", cell_fn=fault_cells.raising_cell)
    (victim,) = results.failed
    assert "FloatingPointError: loss became inf at step 3" in results.error(victim)


def test_ray_resources_are_validated() -> None:
    with pytest.raises(ValueError, match="gpus must be a number >= 0"):
        RayExecutor(gpus=-1)
    with pytest.raises(ValueError, match="address is only used with executor 'ray'"):
        parse(study_dict()).run(executor="local", address="auto", cell_fn=fake_cell)


def test_cli_runs_a_study_on_ray(counted: Path, write_study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture) -> None:
    """`genlab run STUDY --executor ray` (in-process, on this module's Ray instance): the
    summary line, provenance naming the executor, and a local re-run that computes nothing."""
    from genlab.cli import main
    from genlab.study import _study

    monkeypatch.setattr(_study, "_default_cell_fn", lambda: fake_cell)
    path = write_study()
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--executor", "ray"]) == 0
    assert "8 cells (0 cached, 8 computed, 0 failed)" in capsys.readouterr().out
    assert json.loads((tmp_path / "run" / "provenance.json").read_text())["executor"] == "ray"
    assert main(["run", str(path), "--out", str(tmp_path / "run"), "--workers", "1"]) == 0
    assert "8 cells (8 cached, 0 computed, 0 failed)" in capsys.readouterr().out
    assert calls(counted) == 8
