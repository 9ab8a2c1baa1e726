"""Failures inside cells are recorded per cell with their error text; one bad cell never loses
the others. Each failure kind runs in worker processes (workers=2), where a cell can also kill
its worker: such a cell is retried (bounded), then recorded as failed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from genlab.study import LocalExecutor, parse
from tests.study.conftest import study_dict
from tests.study.fake_cells import calls
from tests.study.fake_cells import fake_cell as fake_cell_counted
from tests.study import fault_cells

GRID = {"width": [8, fault_cells.VICTIM_WIDTH], "seed": [0, 1]}  # 4 cells, the 2 of width 16 are victims


def _run(tmp_path: Path, cell_fn, **resources):
    data = study_dict(grid=GRID)
    if resources:
        data["resources"] = resources
    study = parse(data)
    results = study.run(out=tmp_path / "run", workers=2, cell_fn=cell_fn)
    victims = {c.id for c in study.cells if c.params["model.width"] == fault_cells.VICTIM_WIDTH}
    return study, results, victims


def _assert_others_fine(study, results, victims) -> None:
    for cell in study.cells:
        if cell.id not in victims:
            record = json.loads((results.run_dir / "cells" / f"{cell.id}.json").read_text())
            assert record["status"] == "ok"
            width, seed = cell.params["model.width"], cell.params["train.seed"]
            rows = results.rows[(results.rows["width"] == width) & (results.rows["seed"] == seed)]
            assert rows.set_index("quantity").loc["train_loss", "empirical"] == width + seed  # fake_cell's value


@pytest.mark.parametrize(
    ("cell_fn", "text"),
    [
        (fault_cells.raising_cell, "FloatingPointError: loss became inf at step 3"),
        (fault_cells.memory_error_cell, "MemoryError"),
    ],
)
def test_a_raising_cell_is_recorded_with_its_error_and_the_others_finish(tmp_path: Path, cell_fn, text: str) -> None:
    study, results, victims = _run(tmp_path, cell_fn)
    assert set(results.failed) == victims
    for ident in victims:
        assert text in results.error(ident)
        record = json.loads((tmp_path / "run" / "cells" / f"{ident}.json").read_text())
        assert record["status"] == "error" and text in record["error"]
    assert set(results.rows.loc[results.rows["regime"] == "error", "width"]) == {fault_cells.VICTIM_WIDTH}
    _assert_others_fine(study, results, victims)


def test_a_diverged_cell_keeps_its_nan_and_the_others_finish(tmp_path: Path) -> None:
    study, results, victims = _run(tmp_path, fault_cells.nan_cell)
    assert results.failed == []
    statuses = {c.id: json.loads((tmp_path / "run" / "cells" / f"{c.id}.json").read_text())["status"] for c in study.cells}
    assert {i for i, s in statuses.items() if s == "diverged"} == victims
    victim_rows = results.rows[results.rows["width"] == fault_cells.VICTIM_WIDTH]
    assert all(math.isnan(v) for v in victim_rows["empirical"])
    _assert_others_fine(study, results, victims)


def test_a_killed_worker_is_retried_and_the_cell_then_succeeds(tmp_path: Path, counter: Path) -> None:
    study, results, victims = _run(tmp_path, fault_cells.killed_once_cell)
    assert results.failed == []
    assert calls(counter) == len(study.cells) + len(victims)  # each victim ran twice, the others once
    _assert_others_fine(study, results, victims)


@pytest.mark.parametrize("max_retries", [0, 1])
def test_a_cell_that_always_kills_its_worker_fails_after_bounded_retries(tmp_path: Path, counter: Path,
                                                                         max_retries: int) -> None:
    study, results, victims = _run(tmp_path, fault_cells.always_killed_cell, max_retries=max_retries)
    assert set(results.failed) == victims
    for ident in victims:
        assert "worker process died" in results.error(ident) and "exit code -9" in results.error(ident)
    assert calls(counter) == len(study.cells) + max_retries * len(victims)
    _assert_others_fine(study, results, victims)


def test_retry_count_is_validated() -> None:
    with pytest.raises(ValueError, match="max_retries must be None or an int >= 0"):
        LocalExecutor(2, max_retries=-1)


def test_resources_are_recorded_but_not_part_of_the_cell_hash(tmp_path: Path, counter: Path) -> None:
    """[resources] travels in config.toml (so `genlab table` reloads it) but changing it, as when
    a study moves to a cluster, recomputes nothing; cpus sets the worker threads."""
    from genlab.study import open_run
    from tests.study.fake_cells import thread_env_cell

    study = parse(study_dict(grid=GRID))
    study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell_counted)
    moved = parse({**study_dict(grid=GRID), "resources": {"cpus": 1, "gpus": 0.5, "max_retries": 5}})
    assert [c.id for c in moved.cells] == [c.id for c in study.cells]
    again = moved.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell_counted)
    assert again.cells["cached"].all() and calls(counter) == len(study.cells)
    assert open_run(tmp_path / "run").study.resources == {"cpus": 1, "gpus": 0.5, "max_retries": 5}
    threads = moved.run(out=tmp_path / "threads", workers=2, cell_fn=thread_env_cell)
    infos = [json.loads((tmp_path / "threads" / "cells" / f"{c.id}.json").read_text())["output"]["info"] for c in moved.cells]
    assert {info["omp_threads"] for info in infos} == {"1"}
    assert threads.failed == []


def test_cli_address_needs_the_ray_executor(write_study, capsys: pytest.CaptureFixture) -> None:
    from genlab.cli import main

    assert main(["run", str(write_study()), "--address", "auto"]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == ["genlab run: error: argument --address: only used with --executor ray"]
    assert captured.out == ""
