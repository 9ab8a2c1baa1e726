"""Running a study: the cache (content hash), determinism, workers, failures, the run directory."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genlab.study import CellOutput, QuantityRow, load, open_run, parse
from tests.study.conftest import study_dict
from tests.study.fake_cells import calls, fake_cell, not_a_cell_output, thread_env_cell

N_CELLS = 8  # conftest.BASE: alpha[2] x width[2] x seed[2]


def test_a_second_run_computes_nothing(write_study: Callable[..., Path], counter: Path, tmp_path: Path) -> None:
    study = load(write_study())
    first = study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    assert calls(counter) == N_CELLS
    assert not first.cells["cached"].any()
    second = study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    assert calls(counter) == N_CELLS
    assert second.cells["cached"].all()
    pd.testing.assert_frame_equal(first.rows, second.rows)


def test_changing_one_grid_value_computes_only_the_new_cells(counter: Path, tmp_path: Path) -> None:
    parse(study_dict()).run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    changed = parse(study_dict(grid={"alpha": [0.1, 10.0], "width": [8, 32], "seed": [0, 1]}))
    results = changed.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    assert calls(counter) == N_CELLS + 4
    assert list(results.cells["cached"]) == [True, True, False, False] * 2
    assert sorted(set(results.rows["width"])) == [8, 32]  # results hold only the current grid


def test_renaming_a_study_reuses_its_cells(counter: Path, tmp_path: Path) -> None:
    parse(study_dict()).run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    parse(study_dict(name="renamed", description="Same cells, new words.")).run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    assert calls(counter) == N_CELLS


@pytest.mark.parametrize("damage", ["{ not json", "", json.dumps({"status": "ok"}), json.dumps([1, 2])])
def test_a_corrupt_cell_file_is_recomputed(counter: Path, tmp_path: Path, damage: str) -> None:
    study = parse(study_dict())
    study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    victim = tmp_path / "run" / "cells" / f"{study.cells[3].id}.json"
    reference = victim.read_text()
    victim.write_text(damage)
    results = study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    assert calls(counter) == N_CELLS + 1
    assert list(results.cells["cached"]) == [i != 3 for i in range(N_CELLS)]
    assert json.loads(victim.read_text())["output"] == json.loads(reference)["output"]


def test_a_cell_file_with_another_config_is_recomputed(counter: Path, tmp_path: Path) -> None:
    study = parse(study_dict())
    study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    victim = tmp_path / "run" / "cells" / f"{study.cells[0].id}.json"
    record = json.loads(victim.read_text())
    record["config"]["train"]["lr"] = 123.0
    victim.write_text(json.dumps(record))
    study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    assert calls(counter) == N_CELLS + 1


def test_the_same_study_twice_gives_identical_results(tmp_path: Path) -> None:
    study = parse(study_dict())
    study.run(out=tmp_path / "a", workers=1, cell_fn=fake_cell)
    study.run(out=tmp_path / "b", workers=1, cell_fn=fake_cell)
    for name in ("results.csv", "table.md", "config.toml"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_two_workers_give_the_same_results_as_one(counter: Path, tmp_path: Path) -> None:
    study = parse(study_dict())
    study.run(out=tmp_path / "one", workers=1, cell_fn=fake_cell)
    two = study.run(out=tmp_path / "two", workers=2, cell_fn=fake_cell)
    assert calls(counter) == 2 * N_CELLS
    assert len({p.name.split("-")[1] for p in counter.glob("*.call")}) >= 2  # ran in other processes
    assert (tmp_path / "one" / "results.csv").read_bytes() == (tmp_path / "two" / "results.csv").read_bytes()
    assert json.loads((tmp_path / "two" / "provenance.json").read_text())["workers"] == 2
    assert not two.failed


def test_workers_limit_their_threads(tmp_path: Path) -> None:
    study = parse(study_dict())
    study.run(out=tmp_path / "run", workers=2, cell_fn=thread_env_cell)
    infos = [json.loads((tmp_path / "run" / "cells" / f"{c.id}.json").read_text())["output"]["info"] for c in study.cells]
    assert {info["omp_threads"] for info in infos} == {str(max(1, (os.cpu_count() or 1) // 2))}
    assert os.getpid() not in {info["pid"] for info in infos}


def test_several_workers_need_a_picklable_cell_function(tmp_path: Path) -> None:
    def local_cell(config: dict) -> CellOutput:
        return CellOutput(rows=[QuantityRow(q, 1.0, 1.0) for q in config["quantities"]])

    study = parse(study_dict())
    with pytest.raises(ValueError, match="must be picklable"):
        study.run(out=tmp_path / "run", workers=2, cell_fn=local_cell)
    assert len(study.run(out=tmp_path / "run", workers=1, cell_fn=local_cell).rows) == N_CELLS * 3


def test_results_files_columns_and_gap(tmp_path: Path) -> None:
    study = parse(study_dict(quantities=["test_mse", "test_error", "ntk_drift"]))
    results = study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    run = tmp_path / "run"
    for name in ("config.toml", "results.csv", "results.parquet", "table.md", "provenance.json"):
        assert (run / name).is_file(), name
    assert sorted(p.name for p in (run / "cells").iterdir()) == sorted(f"{c.id}.json" for c in study.cells)
    csv = pd.read_csv(run / "results.csv", dtype={"theory_kind": "string", "bound": "string"})  # all empty here: not floats
    assert list(csv.columns) == ["alpha", "width", "seed", "quantity", "theory", "theory_kind", "empirical", "gap", "bound",
                                 "regime"]
    assert len(csv) == N_CELLS * 3
    mse = csv[csv["quantity"] == "test_mse"]
    # three floats read back from decimal CSV text (pandas' parser is not promised to round
    # correctly): the gap is empirical - theory to 1e-15 on these O(1) values (the fake cells'
    # gaps are 0.01 seed and 0.5 + 0.01 seed - 1, so theory - empirical would fail)
    np.testing.assert_allclose(mse["gap"], mse["empirical"] - mse["theory"], rtol=0, atol=1e-15)
    error = csv[csv["quantity"] == "test_error"]
    assert error["theory"].isna().all() and error["gap"].isna().all() and (error["empirical"] == 0.25).all()  # 0.25: a literal, exact in binary and decimal
    assert set(csv["regime"]) == {"kernel", "feature learning"}
    assert list(csv[csv["alpha"] == 10.0]["regime"].unique()) == ["kernel"]
    pd.testing.assert_frame_equal(pd.read_parquet(run / "results.parquet"), results.rows)
    pd.testing.assert_frame_equal(csv, results.rows, check_dtype=False)


def test_no_verdict_without_drift_and_mse(tmp_path: Path) -> None:
    results = parse(study_dict(quantities=["test_error"])).run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    assert set(results.rows["regime"]) == {"n/a"}
    # pandas reads "n/a" as missing unless told otherwise
    assert set(pd.read_csv(tmp_path / "run" / "results.csv", keep_default_na=False)["regime"]) == {"n/a"}


def test_cell_files_and_provenance(tmp_path: Path) -> None:
    study = parse(study_dict())
    study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    record = json.loads((tmp_path / "run" / "cells" / f"{study.cells[0].id}.json").read_text())
    assert record["config"] == study.cells[0].config and record["status"] == "ok" and record["wall_s"] >= 0
    assert record["output"]["rows"][0] == {"quantity": "test_mse", "theory": 1.0, "empirical": 0.5}
    assert record["started"] <= record["finished"]
    assert not list((tmp_path / "run" / "cells").glob(".*"))  # no temporary files left
    provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert set(provenance["packages"]) == {"genlab", "torch", "jax", "jaxlib", "neural-tangents", "numpy"}
    assert provenance["seeds"] == {"train.seed": [0, 1], "task.seed": [0]}
    assert set(provenance["cells"]) == {c.id for c in study.cells}
    assert provenance["cells"][study.cells[1].id]["params"] == {"alpha": 0.1, "width": 8, "seed": 1}
    assert provenance["n_cells"] == N_CELLS and provenance["wall_s"] > 0
    assert {"python", "platform", "git", "started", "finished"} <= set(provenance)


def test_curves_by_cell_id(tmp_path: Path) -> None:
    study = parse(study_dict())
    results = study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    assert set(results.curves) == {c.id for c in study.cells}
    assert results.curves[study.cells[1].id]["train_loss_curve"]["empirical"] == [1.0, 0.5, 1.2]


def test_failed_and_diverged_cells(counter: Path, tmp_path: Path) -> None:
    study = parse(study_dict(grid={"width": [8, 13], "lr": [0.5, 1000.0]}))
    results = study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    assert [c.id for c in study.cells if c.params["model.width"] == 13] == results.failed
    assert "width 13 is unlucky" in results.error(results.failed[0])
    regimes = results.rows.groupby(["width", "lr"], sort=False)["regime"].first().to_dict()
    assert regimes == {(8, 0.5): "kernel", (8, 1000.0): "diverged", (13, 0.5): "error", (13, 1000.0): "error"}
    assert "2 cell(s) failed" in results.render("md")
    study.run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    assert calls(counter) == 4 + 2  # failed cells are computed again, finished ones are not


def test_a_cell_function_must_return_a_cell_output(tmp_path: Path) -> None:
    results = parse(study_dict(grid={})).run(out=tmp_path / "run", workers=1, cell_fn=not_a_cell_output)
    assert len(results.failed) == 1 and "expected a CellOutput" in results.error(results.failed[0])


def test_open_run_reads_back_without_computing(counter: Path, tmp_path: Path) -> None:
    results = parse(study_dict()).run(out=tmp_path / "run", workers=1, cell_fn=fake_cell)
    again = open_run(tmp_path / "run")
    assert calls(counter) == N_CELLS
    pd.testing.assert_frame_equal(again.rows, results.rows)
    pd.testing.assert_frame_equal(again.table(), results.table())
    assert again.render("md") == (tmp_path / "run" / "table.md").read_text()


def test_default_run_dir_is_runs_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    results = parse(study_dict(grid={})).run(workers=1, cell_fn=fake_cell)
    assert results.run_dir == Path("runs") / "toy_study" and (tmp_path / "runs" / "toy_study" / "results.csv").is_file()


def test_out_must_not_be_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a directory"):
        parse(study_dict()).run(out=tmp_path / "file", workers=1, cell_fn=fake_cell)


def test_unknown_executor_and_bad_workers(tmp_path: Path) -> None:
    study = parse(study_dict())
    with pytest.raises(ValueError, match="executor must be one of 'local'"):
        study.run(out=tmp_path / "run", executor="slurm", cell_fn=fake_cell)
    with pytest.raises(ValueError, match="workers must be None or an int >= 1"):
        study.run(out=tmp_path / "run", workers=0, cell_fn=fake_cell)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("workers", [1, 2])
def test_training_progress_of_running_cells_reaches_the_parent(workers: int) -> None:
    """Step progress crosses the process boundary (a manager queue with spawn workers); a cell
    function without a ``progress`` parameter is simply not given one (fake_cell above)."""
    from genlab.study import LocalExecutor
    from tests.study.fake_cells import stepping_cell

    study = parse(study_dict(grid={"width": [8, 16]}))
    seen: list[tuple[str, int, int]] = []
    done: list[str] = []
    LocalExecutor(workers).run(stepping_cell, [(c.id, c.config) for c in study.cells],
                               lambda result: done.append(result.status), lambda *m: seen.append(m))
    assert done == ["ok", "ok"]
    assert sorted(seen) == sorted((c.id, step, 10) for c in study.cells for step in (0, 5, 10))
