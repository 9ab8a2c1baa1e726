"""Real data sets: split, standardisation with train statistics, classes, layouts, mnist1d's pool."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.tasks import make_task
from genlab.tasks._real import _breast_cancer_pool, _digits_pool, _mnist1d_pool

#: Standardised train features: mean 0 and std 1 up to float64 rounding over a few hundred rows.
ATOL = 1e-12


def _check_standardised(task, raw_pool: np.ndarray) -> None:
    x_train = task.x_train.reshape(task.n_train, -1)
    x_test = task.x_test.reshape(task.n_test, -1)
    std = task.meta["standardization"]["std"].reshape(-1)
    mean = task.meta["standardization"]["mean"].reshape(-1)
    assert task.meta["standardization"]["std"].shape == task.input_shape
    live = std > 0
    np.testing.assert_allclose(x_train[:, live].mean(axis=0), 0.0, atol=ATOL)
    np.testing.assert_allclose(x_train[:, live].std(axis=0), 1.0, atol=ATOL)
    # constant train features carry nothing learnable: 0 in train and test
    assert np.all(x_train[:, ~live] == 0.0) and np.all(x_test[:, ~live] == 0.0)
    # the recorded statistics invert the transform back to the raw pool rows
    idx_train, idx_test = task.meta["indices_train"], task.meta["indices_test"]
    assert len(np.intersect1d(idx_train, idx_test)) == 0
    np.testing.assert_allclose((x_train * std + mean)[:, live], raw_pool[idx_train][:, live], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose((x_test * std + mean)[:, live], raw_pool[idx_test][:, live], rtol=1e-12, atol=1e-12)


def test_digits_split_standardisation_and_labels() -> None:
    task = make_task("digits", seed=0)
    raw, labels = _digits_pool()
    _check_standardised(task, raw)
    assert task.meta["standardization"]["std"].min() == 0.0  # some border pixels are always blank
    np.testing.assert_array_equal(task.meta["labels_train"], labels[task.meta["indices_train"]])
    assert task.meta["n_classes"] == 10 and task.out_dim == 10
    # the train + test sets cover the whole pool with the default sizes
    assert sorted(np.concatenate([task.meta["indices_train"], task.meta["indices_test"]])) == list(range(1797))


def test_digits_spatial_layout_is_the_flat_one_reshaped() -> None:
    flat = make_task("digits", seed=1, n_train=100, n_test=50)
    spatial = make_task("digits", seed=1, n_train=100, n_test=50, layout="spatial")
    assert spatial.input_shape == (8, 8, 1) and spatial.meta["input_shape"] == (8, 8, 1)
    np.testing.assert_array_equal(spatial.x_train.reshape(100, 64), flat.x_train)
    # row-major images: pixel (r, c) is feature 8 r + c, as in load_digits().images
    from sklearn.datasets import load_digits

    images = load_digits().images
    idx = spatial.meta["indices_train"][0]
    mean, std = spatial.meta["standardization"]["mean"], spatial.meta["standardization"]["std"]
    live = std > 0
    np.testing.assert_allclose((spatial.x_train[0] * std + mean)[live], images[idx][..., None][live], atol=1e-12)


def test_digits_class_subset_relabels_in_the_given_order() -> None:
    task = make_task("digits", seed=2, classes=[8, 3], n_train=200, n_test=100)
    _, labels = _digits_pool()
    original = labels[task.meta["indices_train"]]
    assert set(original) == {3, 8} and task.meta["classes"] == (8, 3) and task.meta["params"]["classes"] == (8, 3)
    np.testing.assert_array_equal(task.meta["labels_train"], (original == 3).astype(int))  # classes[1] -> label 1 -> +1
    assert task.out_dim == 1 and set(np.unique(task.y_train)) == {-1.0, 1.0}
    three = make_task("digits", seed=2, classes=(0, 1, 2), n_train=200, n_test=100)
    assert three.out_dim == 3 and three.meta["n_classes"] == 3


def test_breast_cancer() -> None:
    task = make_task("breast_cancer", seed=4)
    raw, labels = _breast_cancer_pool()
    assert raw.shape == (569, 30)
    _check_standardised(task, raw)
    assert np.all(task.meta["standardization"]["std"] > 0)
    np.testing.assert_array_equal(task.y_test[:, 0], 2.0 * labels[task.meta["indices_test"]] - 1.0)  # benign = +1
    assert task.meta["class_names"] == ("malignant", "benign")


def test_real_split_differs_with_seed_and_nests_in_n_train() -> None:
    a = make_task("breast_cancer", seed=1, n_train=100, n_test=50)
    b = make_task("breast_cancer", seed=2, n_train=100, n_test=50)
    c = make_task("breast_cancer", seed=1, n_train=200, n_test=50)
    assert not np.array_equal(a.meta["indices_train"], b.meta["indices_train"])
    np.testing.assert_array_equal(c.meta["indices_train"][:100], a.meta["indices_train"])


def test_mnist1d_pool_split_and_layout() -> None:
    task = make_task("mnist1d", seed=3, n_train=400, n_test=200, pool_size=1000, layout="spatial")
    assert task.input_shape == (40, 1) and task.out_dim == 10
    raw, labels = _mnist1d_pool(task.meta["pool_seed"], 1000)
    assert raw.shape == (1000, 40) and np.array_equal(np.bincount(labels), np.full(10, 100))  # balanced pool
    _check_standardised(task, raw)
    np.testing.assert_array_equal(task.meta["labels_test"], labels[task.meta["indices_test"]])
    # another seed: another pool
    other = make_task("mnist1d", seed=4, n_train=400, n_test=200, pool_size=1000)
    assert other.meta["pool_seed"] != task.meta["pool_seed"]


def test_mnist1d_generator_is_deterministic_in_its_seed() -> None:
    _mnist1d_pool.cache_clear()
    first = _mnist1d_pool(1234, 200)
    _mnist1d_pool.cache_clear()
    second = _mnist1d_pool(1234, 200)
    assert first is not second
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(_mnist1d_pool(1235, 200)[0], first[0])
    assert not first[0].flags.writeable  # the cached pool cannot be modified through a task


@pytest.mark.parametrize(("params", "expected"), [({}, 5000), ({"n_train": 6000, "n_test": 1001}, 7010), ({"classes": [1, 2], "n_train": 1500, "n_test": 500}, 10000)])
def test_mnist1d_default_pool_size(params: dict, expected: int) -> None:
    from genlab.tasks import MNIST1DParams

    assert MNIST1DParams(**params).resolved_pool_size() == expected


def test_mnist1d_class_subset() -> None:
    task = make_task("mnist1d", seed=0, classes=[4, 7], n_train=60, n_test=40, pool_size=500)
    assert task.out_dim == 1 and task.meta["n_classes"] == 2 and task.meta["classes"] == (4, 7)
    _, labels = _mnist1d_pool(task.meta["pool_seed"], 500)
    assert set(labels[task.meta["indices_train"]]) <= {4, 7}
