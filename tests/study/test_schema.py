"""Study config validation: every bad config fails with one line naming the dotted key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from genlab.study import StudyConfigError, load, parse
from genlab.study import _schema
from tests.study.conftest import BASE, REAL_TASK_REGISTRY, study_dict

SOURCE = "s.toml"


def error_of(data: dict[str, Any]) -> StudyConfigError:
    with pytest.raises(StudyConfigError) as info:
        parse(data, source=SOURCE)
    text = str(info.value)
    assert "\n" not in text, text
    assert text.startswith(f"{SOURCE}: "), text
    return info.value


def with_section(section: str, **changes: Any) -> dict[str, Any]:
    data = study_dict()
    data[section] = {**data.get(section, {}), **changes}
    return data


MODEL_KEYS = ("kind, depth, activation, parametrization, w_std, b_std, out_dim, filter_size, stride, padding, "
              "pooling, width, alpha")


@pytest.mark.parametrize(
    ("data", "key", "message"),
    [
        # unknown keys list the valid ones (and suggest the closest)
        (with_section("model", widht=8), "model.widht",
         f"unknown key (did you mean 'width'?); valid keys: {MODEL_KEYS}"),
        (study_dict(quantites=["test_mse"]), "quantites", "valid keys: name, description, quantities, task, model"),
        (with_section("train", lrr=0.1), "train.lrr", "did you mean 'lr'?"),
        (with_section("task", n_trian=8), "task.n_trian", "valid keys: name, seed, n_train, n_test, dim, noise"),
        (study_dict(table={"row": ["alpha"]}), "table.row", "valid keys: rows, quantities, aggregate"),
        (study_dict(regime={"drift": 0.1}), "regime.drift", "valid keys: drift_threshold, error_tolerance"),
        # wrong types
        (with_section("model", width="256"), "model.width", "must be an int; got '256'"),
        (with_section("model", depth=True), "model.depth", "must be an int; got True"),
        (with_section("train", lr="fast"), "train.lr", "must be a number; got 'fast'"),
        (with_section("model", activation=3), "model.activation", "must be a string; got 3"),
        (study_dict(quantities="test_mse"), "quantities", "must be a list; got 'test_mse'"),
        (study_dict(grid={"alpha": 1.0}), "grid.alpha", "must be a list; got 1.0"),
        (study_dict(task="toy"), "task", "must be a table; got 'toy'"),
        # impossible values, from the pydantic layer and from the dataclasses
        (with_section("model", width=0), "model.width", "must be >= 1; got 0"),
        (with_section("model", alpha=-1.0), "model.alpha", "must be > 0; got -1.0"),
        (with_section("train", lr=-1), "train.lr", "must be a finite float > 0; got -1.0"),
        (with_section("model", depth=-1), "model.depth", "must be an int >= 0 for kind 'fc'; got -1"),
        (with_section("model", activation="relux"), "model.activation", "must be one of 'relu', 'erf'"),
        (with_section("train", optimizer="gd", batch_size=4), "train.batch_size", "must be None for optimizer 'gd'"),
        (with_section("task", n_train=0), "task.n_train", "must be an int >= 1; got 0"),
        (study_dict(regime={"error_tolerance": 1.5}), "regime.error_tolerance", "must be < 1; got 1.5"),
        (with_section("train", lr=float("nan")), "train.lr", "must be a finite number; got nan"),
        (study_dict(name="my study"), "name", "must match ^[A-Za-z0-9_-]+$; got 'my study'"),
        (study_dict(description=None), "description", "is required"),
        (study_dict(description="  "), "description", "must not be empty"),
        # quantities and task names
        (study_dict(quantities=["test_mse", "tset_mse"]), "quantities[1]",
         "unknown quantity name (did you mean 'test_mse'?); valid quantity names: train_loss, test_loss"),
        (study_dict(quantities=["test_mse", "test_mse"]), "quantities[1]", "duplicate quantity 'test_mse'"),
        (study_dict(quantities=[]), "quantities", "must not be empty"),
        (with_section("task", name="tou"), "task.name", "unknown task (did you mean 'toy'?); valid tasks: toy, toy_deep"),
        (study_dict(task={"n_train": 8}), "task.name", "is required; valid tasks: toy, toy_deep"),
        # the grid
        (study_dict(grid={"alpha": []}), "grid.alpha", "must not be empty"),
        (study_dict(grid={"widht": [8]}), "grid.widht", "unknown key (did you mean 'width'?); valid keys: model.{kind,"),
        (study_dict(grid={"model.lr": [0.1]}), "grid.model.lr", "unknown key; 'lr' is a key of train: write train.lr"),
        (study_dict(grid={"optim.lr": [0.1]}), "grid.optim.lr", "unknown section 'optim'"),
        (study_dict(grid={"task.name": ["toy"]}), "grid.task.name", "the task cannot be swept"),
        (study_dict(grid={"width": [8], "model.width": [16]}), "grid.model.width", "sweeps the same key as grid.width"),
        (study_dict(grid={"width": [8, 0, 16]}), "grid.width[1]", "must be >= 1; got 0"),
        (study_dict(grid={"lr": [0.1, -0.5]}), "grid.lr[1]", "must be a finite float > 0; got -0.5"),
        (study_dict(grid={"alpha": [1.0, float("nan")]}), "grid.alpha[1]", "must be a finite number; got nan"),
        (study_dict(grid={"width": [8, 8]}), "grid", "resolve to the same config; remove the duplicate value"),
        (study_dict(grid={"a": list(range(30))}), "grid.a", "unknown key"),
        (study_dict(grid={"width": list(range(1, 31)), "lr": [0.1 * i for i in range(1, 31)],
                          "n_train": list(range(1, 31))}), "grid", "expands to 27000 cells (width[30] x lr[30] x n_train[30]); the limit is 10000"),
        # the table
        (study_dict(table={"rows": ["depth"]}), "table.rows[0]", "'depth' is not swept; swept keys: alpha, width, seed"),
        (study_dict(table={"rows": ["alpha"]}), "table.rows", "must list every swept key except the aggregated one; missing: width"),
        (study_dict(table={"aggregate": "lr"}), "table.aggregate", "'lr' is not swept"),
        (study_dict(table={"quantities": ["test_error"]}), "table.quantities[0]", "'test_error' is not one of the study's quantities"),
    ],
)
def test_bad_config_names_the_key(data: dict[str, Any], key: str, message: str) -> None:
    error = error_of(data)
    assert error.key == key, str(error)
    assert message in error.message, str(error)
    assert str(error) == f"{SOURCE}: {key}: {error.message}"


def test_a_typo_of_a_required_key_is_reported_as_the_typo() -> None:
    error = error_of(study_dict(model={"depth": 1, "widht": 8}, grid={}))
    assert error.key == "model.widht" and "did you mean 'width'?" in error.message


def test_ambiguous_bare_key_lists_the_dotted_options() -> None:
    data = study_dict(task={"name": "toy_deep"}, grid={"depth": [1, 2]})
    error = error_of(data)
    assert (error.key, error.message) == ("grid.depth", "ambiguous key 'depth': write one of model.depth, task.depth")
    study = parse(study_dict(task={"name": "toy_deep"}, grid={"task.depth": [1, 2], "model.depth": [1, 2]}))
    assert list(study.columns.values()) == ["task.depth", "model.depth"]


def test_grid_combination_error_names_the_cell() -> None:
    data = study_dict(train={"warmup_steps": 5, "steps": 10}, grid={"width": [8, 16], "steps": [10, 2]})
    error = error_of(data)
    assert error.key == "train.warmup_steps"
    assert "(in the grid cell width=8, steps=2)" in error.message


def test_required_width_may_come_from_the_grid() -> None:
    study = parse(study_dict(model={"depth": 1}, grid={"width": [4, 8]}))
    assert [c.config["model"]["width"] for c in study.cells] == [4, 8]
    error = error_of(study_dict(model={"depth": 1}, grid={"alpha": [1.0]}))
    assert (error.key, error.message) == ("model.width", "is required")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name = \"x\"\ndescription = \"caf\xe9\"\n", "is not UTF-8 text (byte 0xe9 on line 2)"),
        (b"name = \"x\"\n[model\nwidth = 3\n", "invalid TOML: "),
        (b"name = \"x\"\nname = \"y\"\n", "invalid TOML: "),
    ],
)
def test_unreadable_files_give_one_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    with pytest.raises(StudyConfigError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: {message}")
    assert "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(StudyConfigError, match=r"missing\.toml: no such file$"):
        load(tmp_path / "missing.toml")
    with pytest.raises(StudyConfigError, match="is a directory"):
        load(tmp_path)


def test_study_config_error_is_a_value_error() -> None:
    assert issubclass(StudyConfigError, ValueError)


def test_defaults_are_filled_and_values_canonical() -> None:
    study = parse(study_dict(model={"depth": 1, "width": 8, "w_std": 2, "activation": "linear"}, grid={}))
    (cell,) = study.cells
    model = cell.config["model"]
    assert model["w_std"] == 2.0 and isinstance(model["w_std"], float)
    assert model["activation"] == "identity"
    assert model["alpha"] is None and model["kind"] == "fc"
    assert cell.config["train"]["optimizer"] == "gd" and cell.config["train"]["seed"] == 0
    assert cell.config["task"] == {"name": "toy", "n_train": 16, "n_test": 64, "dim": 4, "noise": 0.0, "seed": 0}
    assert "regime" not in cell.config and study.regime == {"drift_threshold": 0.1, "error_tolerance": 0.1}
    assert study.aggregate is None and study.table_rows == ()


def test_table_defaults_and_settings() -> None:
    study = parse(BASE)
    assert study.table_rows == ("model.alpha", "model.width")
    assert study.aggregate == "train.seed"
    assert study.table_quantities == tuple(BASE["quantities"])
    study = parse(study_dict(table={"rows": ["width", "alpha", "seed"], "aggregate": "none", "quantities": ["test_mse"]}))
    assert study.table_rows == ("model.width", "model.alpha", "train.seed")
    assert study.aggregate is None and study.table_quantities == ("test_mse",)


def test_the_real_task_registry_validates_every_task_with_its_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        tasks = REAL_TASK_REGISTRY()
    except (ImportError, AttributeError):
        pytest.skip("genlab.tasks.TASKS is not available yet")
    monkeypatch.setattr(_schema, "_task_registry", REAL_TASK_REGISTRY)
    for name in tasks:
        study = parse(study_dict(task={"name": name}, grid={}))
        assert study.cells[0].config["task"]["name"] == name
    error = error_of(study_dict(task={"name": next(iter(tasks)), "bogus_key": 1}, grid={}))
    assert error.key == "task.bogus_key" and "valid keys: name, seed" in error.message
