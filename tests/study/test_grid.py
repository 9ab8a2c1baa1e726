"""Grid expansion (order, count, key resolution) and the content hash of a cell."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from genlab.study import cell_id, load, parse
from genlab.study._grid import RESULTS_VERSION
from tests.study.conftest import BASE, study_dict


def ids(data: dict[str, Any]) -> list[str]:
    return [cell.id for cell in parse(data).cells]


def test_cells_are_the_product_in_written_order_last_key_fastest() -> None:
    study = parse(BASE)
    assert len(study.cells) == 2 * 2 * 2
    assert [c.index for c in study.cells] == list(range(8))
    assert [tuple(c.params.values()) for c in study.cells] == [
        (0.1, 8, 0), (0.1, 8, 1), (0.1, 16, 0), (0.1, 16, 1),
        (10.0, 8, 0), (10.0, 8, 1), (10.0, 16, 0), (10.0, 16, 1),
    ]
    assert list(study.cells[0].params) == ["model.alpha", "model.width", "train.seed"]
    assert len(set(c.id for c in study.cells)) == 8


def test_reordering_the_grid_reorders_the_cells_but_keeps_their_ids() -> None:
    reordered = study_dict(grid={"seed": [0, 1], "width": [8, 16], "alpha": [0.1, 10.0]})
    assert sorted(ids(reordered)) == sorted(ids(BASE))
    assert ids(reordered) != ids(BASE)


def test_bare_keys_resolve_to_their_section() -> None:
    study = parse(study_dict(grid={"lr": [0.1], "n_train": [8], "depth": [2], "seed": [3], "task.seed": [4], "alpha": [2.0]}))
    (cell,) = study.cells
    assert list(cell.params) == ["train.lr", "task.n_train", "model.depth", "train.seed", "task.seed", "model.alpha"]
    assert (cell.config["train"]["seed"], cell.config["task"]["seed"]) == (3, 4)
    assert study.columns == {"train.lr": "lr", "task.n_train": "n_train", "model.depth": "depth",
                             "train.seed": "train.seed", "task.seed": "task.seed", "model.alpha": "alpha"}


def test_no_grid_is_one_cell() -> None:
    study = parse(study_dict(grid=None))
    assert len(study.cells) == 1 and study.cells[0].params == {}


def test_cell_id_is_a_pure_function_of_the_config() -> None:
    # Pinned: changing the canonical form (sorted keys, no spaces) or the results version
    # prefix would invalidate every cache.
    canonical = b'genlab-results-v2:{"a":{"x":"s","y":null},"b":[1,2.5]}'
    assert RESULTS_VERSION == 2
    assert cell_id({"b": [1, 2.5], "a": {"y": None, "x": "s"}}) == hashlib.sha256(canonical).hexdigest()[:16]
    assert cell_id({"a": {"x": "s", "y": None}, "b": [1, 2.5]}) == cell_id({"b": [1, 2.5], "a": {"y": None, "x": "s"}})
    assert len(cell_id({})) == 16


def test_hash_ignores_name_description_table_and_explicit_defaults() -> None:
    reference = ids(BASE)
    assert ids(study_dict(name="other", description="Another hypothesis entirely.")) == reference
    assert ids(study_dict(table={"rows": ["width", "alpha"], "quantities": ["test_mse"]})) == reference
    # The verdict is recomputed from stored rows: a new threshold recomputes no cell.
    assert ids(study_dict(regime={"drift_threshold": 0.2})) == reference
    explicit = study_dict(
        model={"depth": 1, "width": 8, "kind": "fc", "w_std": 1, "activation": "relu"},
        train={"lr": 0.5, "steps": 10, "momentum": 0, "optimizer": "gd", "seed": 0},
        task={"name": "toy", "n_train": 16, "noise": 0, "seed": 0},
    )
    assert ids(explicit) == reference


def test_hash_changes_with_any_resolved_value() -> None:
    reference = set(ids(BASE))
    for changes in ({"train": {"lr": 0.25, "steps": 10}}, {"task": {"name": "toy", "n_train": 17}},
                    {"quantities": ["test_mse", "ntk_drift"]}):
        assert not reference & set(ids(study_dict(**changes))), changes


def test_the_same_file_loads_to_the_same_ids(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(tomli_w.dumps(BASE), encoding="utf-8")
    assert [c.id for c in load(path).cells] == [c.id for c in load(path).cells] == ids(BASE)


@pytest.mark.parametrize("grid", [{"alpha": [0.1, 10.0], "width": [8, 16], "seed": [0, 1]}, {}])
def test_a_run_directory_config_reloads_to_the_same_cells(tmp_path: Path, grid: dict[str, Any]) -> None:
    from genlab.study._store import write_config

    study = parse(study_dict(grid=grid, table={"quantities": ["ntk_drift"]}))
    write_config(tmp_path, study)
    again = load(tmp_path / "config.toml")
    assert [c.id for c in again.cells] == [c.id for c in study.cells]
    assert (again.table_rows, again.table_quantities, again.aggregate) == (study.table_rows, study.table_quantities, study.aggregate)
