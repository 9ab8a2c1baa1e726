"""Every bad input fails early with a TaskError naming the key (``task.<key>``) and what was expected."""

from __future__ import annotations

import re

import pytest

from genlab.tasks import TaskError, make_task, task_params

CASES = [
    # split sizes: zero, negative, wrong type (bool is not an int; numpy ints are accepted)
    ("teacher_student", {"n_train": 0}, r"^task\.n_train must be an int >= 1; got 0$"),
    ("linear_regression", {"n_train": -5}, r"^task\.n_train must be an int >= 1; got -5$"),
    ("single_index", {"n_train": 10.0}, r"^task\.n_train must be an int >= 1; got 10\.0$"),
    ("sparse_parity", {"n_train": "10"}, r"^task\.n_train must be an int >= 1; got '10'$"),
    ("gaussian_mixture", {"n_train": True}, r"^task\.n_train must be an int >= 1; got True$"),
    ("digits", {"n_test": 0}, r"^task\.n_test must be an int >= 1; got 0$"),
    ("breast_cancer", {"n_test": None}, r"^task\.n_test must be an int >= 1; got None$"),
    # dimensions and widths
    ("teacher_student", {"d": 0}, r"^task\.d must be an int >= 1; got 0$"),
    ("teacher_student", {"teacher_width": 0}, r"^task\.teacher_width must be an int >= 1; got 0$"),
    ("teacher_student", {"teacher_depth": -1}, r"^task\.teacher_depth must be an int >= 0; got -1$"),
    ("teacher_student", {"teacher_activation": "tanh"}, r"^task\.teacher_activation must be one of 'relu', 'erf', 'gelu', 'identity'; got 'tanh'$"),
    ("teacher_student", {"input_dist": "cube"}, r"^task\.input_dist must be one of 'gaussian', 'sphere'; got 'cube'$"),
    ("teacher_student", {"noise": -0.1}, r"^task\.noise must be a finite float >= 0; got -0\.1$"),
    ("teacher_student", {"noise": float("nan")}, r"^task\.noise must be a finite float >= 0; got nan$"),
    ("teacher_student", {"noise": "0.1"}, r"^task\.noise must be a finite float >= 0; got '0\.1'$"),
    ("linear_regression", {"spectrum_decay": -1.0}, r"^task\.spectrum_decay must be a finite float >= 0; got -1\.0$"),
    ("linear_regression", {"beta": "sparse"}, r"^task\.beta must be one of 'isotropic', 'aligned'; got 'sparse'$"),
    ("single_index", {"degree": 0}, r"^task\.degree must be an int in 1\.\.6; got 0$"),
    ("single_index", {"degree": 7}, r"^task\.degree must be an int in 1\.\.6; got 7$"),
    ("single_index", {"degree": 2.0}, r"^task\.degree must be an int in 1\.\.6; got 2\.0$"),
    ("sparse_parity", {"k": 21}, r"^task\.k must be an int in 1\.\.task\.d = 20; got 21$"),
    ("sparse_parity", {"d": 4, "k": 5}, r"^task\.k must be an int in 1\.\.task\.d = 4; got 5$"),
    ("sparse_parity", {"k": 0}, r"^task\.k must be an int in 1\.\.task\.d = 20; got 0$"),
    ("sparse_parity", {"noise": 0.6}, r"^task\.noise must be a finite float >= 0 and <= 0\.5; got 0\.6$"),
    ("gaussian_mixture", {"n_classes": 1}, r"^task\.n_classes must be an int in 2\.\.task\.d = 16; got 1$"),
    ("gaussian_mixture", {"d": 3, "n_classes": 4}, r"^task\.n_classes must be an int in 2\.\.task\.d = 3; got 4$"),
    ("gaussian_mixture", {"d": 1}, r"^task\.d must be an int >= 2; got 1$"),
    ("gaussian_mixture", {"separation": -1.0}, r"^task\.separation must be a finite float >= 0; got -1\.0$"),
    # real data: pool too small, classes, layout
    ("digits", {"n_train": 1500, "n_test": 500}, r"^task\.n_train \+ task\.n_test = 2000 exceeds the 1797 samples of 'digits'$"),
    (
        "digits",
        {"classes": [3, 8], "n_train": 300, "n_test": 100},
        r"^task\.n_train \+ task\.n_test = 400 exceeds the 357 samples of 'digits' with task\.classes = \[3, 8\]$",
    ),
    ("digits", {"classes": [3]}, r"^task\.classes must be None or a list of at least 2 distinct ints from 0\.\.9; got \[3\]$"),
    ("digits", {"classes": [3, 3]}, r"^task\.classes must be None or a list of at least 2 distinct ints from 0\.\.9; got \[3, 3\]$"),
    ("digits", {"classes": [3, 10]}, r"^task\.classes must be None or a list .*; got \[3, 10\]$"),
    ("digits", {"classes": "38"}, r"^task\.classes must be None or a list .*; got '38'$"),
    ("digits", {"layout": "image"}, r"^task\.layout must be one of 'flat', 'spatial'; got 'image'$"),
    ("breast_cancer", {"n_train": 500}, r"^task\.n_train \+ task\.n_test = 669 exceeds the 569 samples of 'breast_cancer'$"),
    ("mnist1d", {"pool_size": 15}, r"^task\.pool_size must be None or a multiple of 10 >= 10; got 15$"),
    ("mnist1d", {"pool_size": 0}, r"^task\.pool_size must be None or a multiple of 10 >= 10; got 0$"),
    (
        "mnist1d",
        {"pool_size": 1000, "n_train": 900, "n_test": 200},
        r"^task\.n_train \+ task\.n_test = 1100 exceeds the 1000 samples of 'mnist1d' \(task\.pool_size = 1000\)$",
    ),
    (
        "mnist1d",
        {"pool_size": 1000, "classes": [0, 1], "n_train": 150, "n_test": 60},
        r"^task\.n_train \+ task\.n_test = 210 exceeds the 200 samples of 'mnist1d' with task\.classes = \[0, 1\] \(task\.pool_size = 1000\)$",
    ),
    ("mnist1d", {"layout": "2d"}, r"^task\.layout must be one of 'flat', 'spatial'; got '2d'$"),
]


@pytest.mark.parametrize(("name", "params", "match"), CASES, ids=[f"{n}-{'-'.join(p)}" for n, p, _ in CASES])
def test_bad_value_names_the_key(name: str, params: dict, match: str) -> None:
    with pytest.raises(TaskError, match=match):
        make_task(name, seed=0, **params)
    # the same check runs on validation alone (a config can be checked before anything is generated)
    with pytest.raises(TaskError, match=match):
        task_params(name, **params)


def test_unknown_task_lists_the_valid_ones() -> None:
    valid = (
        "breast_cancer, digits, gaussian_mixture, linear_regression, linear_separable, mnist1d, single_index, "
        "sparse_linear_regression, sparse_parity, teacher_student"
    )
    with pytest.raises(TaskError, match=rf"^unknown task 'mnist'; valid tasks: {valid}$"):
        make_task("mnist", seed=0)
    with pytest.raises(TaskError, match=r"^unknown task 3; valid tasks: breast_cancer, "):
        make_task(3, seed=0)  # type: ignore[arg-type]


def test_unknown_key_lists_the_valid_keys() -> None:
    keys = "d, input_dist, n_test, n_train, noise, teacher_activation, teacher_depth, teacher_width"
    with pytest.raises(TaskError, match=rf"^unknown key task\.widht for task 'teacher_student'; valid keys: {keys}$"):
        make_task("teacher_student", seed=0, widht=3)
    with pytest.raises(TaskError, match=r"^unknown key task\.layout for task 'breast_cancer'; valid keys: n_test, n_train$"):
        make_task("breast_cancer", seed=0, layout="flat")


@pytest.mark.parametrize("seed", [1.0, "0", None, True, 2.5])
def test_seed_must_be_an_int(seed: object) -> None:
    with pytest.raises(TaskError, match=rf"^task\.seed must be an int; got {re.escape(repr(seed))}$"):
        make_task("single_index", seed=seed, n_train=2, n_test=2)  # type: ignore[arg-type]


def test_seed_is_keyword_only_and_required() -> None:
    with pytest.raises(TypeError, match="seed"):
        make_task("single_index")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        make_task("single_index", 0)  # type: ignore[misc]


def test_numpy_ints_and_negative_seeds_are_accepted() -> None:
    import numpy as np

    task = make_task("sparse_parity", seed=np.int64(-4), n_train=np.int32(5), n_test=3, noise=np.float32(0.25))
    assert task.meta["params"]["seed"] == -4 and type(task.meta["params"]["n_train"]) is int
    assert type(task.meta["params"]["noise"]) is float
    assert not np.array_equal(task.x_train, make_task("sparse_parity", seed=4, n_train=5, n_test=3).x_train)


def test_task_error_is_a_value_error() -> None:
    assert issubclass(TaskError, ValueError)
