"""The contract every task honours: shapes, dtypes, determinism, meta keys, label/target consistency."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from genlab.tasks import TASKS, Task, TaskError, make_task, task_names
from genlab.tasks._real import _mnist1d_pool

#: Small parameters per task so that the whole battery runs in seconds (mnist1d: a 300-sequence
#: pool takes ~0.15 s to generate instead of ~2.5 s for the default 5000).
SMALL: dict[str, dict] = {
    "teacher_student": {"n_train": 40, "n_test": 30, "d": 5, "teacher_width": 32},
    "linear_regression": {"n_train": 40, "n_test": 30, "d": 6, "spectrum_decay": 1.0, "noise": 0.1},
    "single_index": {"n_train": 40, "n_test": 30, "d": 6, "degree": 3, "noise": 0.1},
    "sparse_parity": {"n_train": 40, "n_test": 30, "d": 8, "k": 3, "noise": 0.2},
    "gaussian_mixture": {"n_train": 40, "n_test": 30, "d": 6, "n_classes": 3},
    "digits": {"n_train": 40, "n_test": 30},
    "breast_cancer": {"n_train": 40, "n_test": 30},
    "mnist1d": {"n_train": 40, "n_test": 30, "pool_size": 300},
    # implicit_bias topic
    "sparse_linear_regression": {"n_train": 40, "n_test": 30, "d": 12, "k": 3, "noise": 0.1},
    "linear_separable": {"n_train": 40, "n_test": 30, "d": 5, "margin": 0.2},
}

EXPECTED_INPUT_SHAPE = {
    "teacher_student": (5,),
    "linear_regression": (6,),
    "single_index": (6,),
    "sparse_parity": (8,),
    "gaussian_mixture": (6,),
    "digits": (64,),
    "breast_cancer": (30,),
    "mnist1d": (40,),
    "sparse_linear_regression": (12,),  # implicit_bias topic
    "linear_separable": (5,),  # implicit_bias topic
}

CLASSIFICATION = {"sparse_parity", "gaussian_mixture", "digits", "breast_cancer", "mnist1d", "linear_separable"}
ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def _fresh(name: str, seed: int, **params) -> Task:
    """make_task without any in-memory pool cache, so that determinism is really re-derived."""
    _mnist1d_pool.cache_clear()
    return make_task(name, seed=seed, **params)


def test_registry_lists_every_task() -> None:
    assert task_names() == sorted(SMALL) == sorted(TASKS)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_params_class_is_frozen_kw_only_with_defaults_and_a_reference(name: str) -> None:
    cls = TASKS[name]
    params = cls()  # every field has a default, and the defaults are valid (pool included)
    assert {"n_train", "n_test"} <= set(cls.keys())
    assert all(f.kw_only for f in dataclasses.fields(cls))
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.n_train = 3  # type: ignore[misc]
    doc = cls.__doc__ or ""
    assert "Data model" in doc and any(str(year) in doc for year in range(1985, 2026)), doc


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shapes_dtypes_and_meta(name: str) -> None:
    task = make_task(name, seed=3, **SMALL[name])
    for key in ARRAYS:
        arr = getattr(task, key)
        assert isinstance(arr, np.ndarray) and arr.dtype == np.float64, key
        assert np.all(np.isfinite(arr)), key
    assert task.x_train.shape == (40, *EXPECTED_INPUT_SHAPE[name])
    assert task.x_test.shape == (30, *EXPECTED_INPUT_SHAPE[name])
    assert task.y_train.ndim == 2 and task.y_test.ndim == 2
    assert task.y_train.shape == (40, task.out_dim) and task.y_test.shape == (30, task.out_dim)
    assert (task.n_train, task.n_test, task.input_shape) == (40, 30, EXPECTED_INPUT_SHAPE[name])
    meta = task.meta
    assert meta["name"] == name and meta["input_shape"] == EXPECTED_INPUT_SHAPE[name]
    assert meta["kind"] == ("classification" if name in CLASSIFICATION else "regression")
    # params: the resolved parameters, every key present (defaults filled in), seed included
    assert meta["params"]["seed"] == 3
    assert set(meta["params"]) == set(TASKS[name].keys()) | {"seed"}
    for key, value in SMALL[name].items():
        assert meta["params"][key] == value
    # the resolved params reproduce the task
    again = make_task(name, **meta["params"])
    for key in ARRAYS:
        np.testing.assert_array_equal(getattr(again, key), getattr(task, key))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_deterministic_in_seed_and_params(name: str) -> None:
    a, b = _fresh(name, 11, **SMALL[name]), _fresh(name, 11, **SMALL[name])
    c = _fresh(name, 12, **SMALL[name])
    for key in ARRAYS:
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)  # bit-identical
    assert not np.array_equal(a.x_train, c.x_train)
    assert not np.array_equal(a.x_test, c.x_test)


@pytest.mark.parametrize("name", sorted(CLASSIFICATION))
def test_classification_labels_and_targets_agree(name: str) -> None:
    task = make_task(name, seed=5, **SMALL[name])
    k = task.meta["n_classes"]
    for labels, y in ((task.meta["labels_train"], task.y_train), (task.meta["labels_test"], task.y_test)):
        assert labels.dtype.kind == "i" and labels.shape == (y.shape[0],)
        assert labels.min() >= 0 and labels.max() < k
        if k == 2:
            assert y.shape[1] == 1 and set(np.unique(y)) <= {-1.0, 1.0}
            np.testing.assert_array_equal(y[:, 0], 2.0 * labels - 1.0)
        else:
            assert y.shape[1] == k and set(np.unique(y)) <= {0.0, 1.0}
            np.testing.assert_array_equal(y.sum(axis=1), 1.0)
            np.testing.assert_array_equal(y.argmax(axis=1), labels)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_default_parameters_generate(name: str) -> None:
    # the defaults fit the pool of the real data sets; checks the split sizes only (fast enough:
    # the default mnist1d pool of 5000 sequences takes ~2.5 s and is cached for later tests)
    task = make_task(name, seed=0)
    params = TASKS[name]()
    assert (task.n_train, task.n_test) == (params.n_train, params.n_test)


def test_mnist1d_leaves_global_random_state_alone() -> None:
    np.random.seed(123)
    random.seed(123)
    expected_np, expected_py = np.random.random(3), random.random()
    np.random.seed(123)
    random.seed(123)
    _fresh("mnist1d", 0, **SMALL["mnist1d"])
    np.testing.assert_array_equal(np.random.random(3), expected_np)
    assert random.random() == expected_py


def test_task_validates_direct_construction() -> None:
    x, y = np.zeros((4, 3)), np.zeros((4, 1))
    task = Task(x, y, np.zeros((2, 3)), np.zeros((2, 1)))
    assert task.meta == {"input_shape": (3,)} and task.out_dim == 1
    with pytest.raises(TaskError, match=r"Task\.y_train must have shape \(4, out_dim\); got \(4,\)"):
        Task(x_train=x, y_train=np.zeros(4), x_test=x, y_test=y)
    with pytest.raises(TaskError, match=r"Task\.x_test must have input shape \(3,\) like x_train; got \(2,\)"):
        Task(x_train=x, y_train=y, x_test=np.zeros((4, 2)), y_test=y)
    with pytest.raises(TaskError, match=r"Task\.y_test must have 1 columns like y_train; got 2"):
        Task(x_train=x, y_train=y, x_test=x, y_test=np.zeros((4, 2)))
    with pytest.raises(TaskError, match=r"Task\.meta\['kind'\] must be one of 'regression', 'classification'"):
        Task(x_train=x, y_train=y, x_test=x, y_test=y, meta={"kind": "ranking"})


def test_import_is_cheap() -> None:
    # torch, scikit-learn and mnist1d (which imports matplotlib.pyplot) load only when a task needs them
    import subprocess
    import sys

    code = "import sys, genlab.tasks; print(sorted(m for m in ('torch', 'sklearn', 'mnist1d', 'matplotlib', 'jax') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
