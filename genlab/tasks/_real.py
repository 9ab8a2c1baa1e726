"""Small real (or realistic) data sets, all available offline.

Every real task works the same way: the whole pool of samples (optionally restricted to some
classes) is shuffled with the seed, the first ``n_train`` samples are the train set and the next
``n_test`` the test set (a pool too small for both is an error), and every feature is
standardised with the TRAIN mean and std (:func:`~genlab.tasks._task.standardize`; reported in
``meta["standardization"]`` with the input's shape). Labels are re-indexed to ``0..K-1`` in the
order of ``meta["classes"]`` (the original class values); two classes give ±1 targets
(``classes[1]`` is +1), more give one-hot targets. ``meta["indices_train"]`` and
``meta["indices_test"]`` index the samples in the full, unrestricted pool.
"""

from __future__ import annotations

import functools
import math
import random
import threading
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from genlab.tasks._task import (
    Task,
    TaskError,
    TaskParams,
    check_choice,
    check_classes,
    check_int,
    class_targets,
    classification_meta,
    derived_seed,
    rng,
    standardize,
)

DIGITS = tuple(range(10))

#: MNIST-1D's standard pool: 5000 sequences, 500 per class (Greydanus & Kobak 2024).
MNIST1D_DEFAULT_POOL = 5000
MNIST1D_LENGTH = 40


def _readonly(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    for arr in arrays:
        arr.flags.writeable = False
    return arrays


@functools.lru_cache(maxsize=1)
def _digits_pool() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)  # bundled with scikit-learn: no download
    return _readonly(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64))


@functools.lru_cache(maxsize=1)
def _breast_cancer_pool() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)  # bundled with scikit-learn: no download
    return _readonly(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64))


_MNIST1D_LOCK = threading.Lock()


@functools.lru_cache(maxsize=4)
def _mnist1d_pool(pool_seed: int, pool_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``pool_size`` MNIST-1D sequences (``pool_size / 10`` per class) from mnist1d's generator.

    ``mnist1d.data.make_dataset`` is deterministic given ``args.seed`` but draws from the global
    ``random`` and ``numpy.random`` states (it calls ``set_seed``): we hold a lock and restore both
    states afterwards, so callers' global randomness is untouched. It never downloads
    (``mnist1d.data.get_dataset`` would; it is not used).
    """
    import mnist1d.data

    args = mnist1d.data.get_dataset_args()
    args.num_samples = pool_size
    args.train_split = 1.0  # the whole pool in "x"; genlab splits it itself
    args.seed = pool_seed
    with _MNIST1D_LOCK:
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            data = mnist1d.data.make_dataset(args)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
    x = np.asarray(data["x"], dtype=np.float64)
    y = np.asarray(data["y"], dtype=np.int64)
    if x.shape != (pool_size, MNIST1D_LENGTH) or y.shape != (pool_size,):  # pragma: no cover - upstream change
        raise RuntimeError(f"mnist1d.data.make_dataset returned x {x.shape}, y {y.shape}; expected ({pool_size}, 40)")
    return _readonly(x, y)


def _check_pool(params: TaskParams, labels: np.ndarray, classes: tuple[int, ...] | None, what: str = "") -> None:
    available = int(np.isin(labels, classes).sum()) if classes is not None else int(labels.size)
    requested = params.n_train + params.n_test
    if requested > available:
        restricted = f" with task.classes = {list(classes)}" if classes is not None else ""
        raise TaskError(
            f"task.n_train + task.n_test = {requested} exceeds the {available} samples of '{params.name}'{restricted}{what}"
        )


def _split_standardize(
    params: TaskParams,
    seed: int,
    x_pool: np.ndarray,
    labels_pool: np.ndarray,
    classes: tuple[int, ...],
    input_shape: tuple[int, ...],
    **meta,
) -> Task:
    index = np.flatnonzero(np.isin(labels_pool, classes))
    perm = rng(seed, params.name, "split").permutation(index.size)
    idx_train = index[perm[: params.n_train]]
    idx_test = index[perm[params.n_train : params.n_train + params.n_test]]
    remap = np.full(int(labels_pool.max()) + 1, -1, dtype=np.int64)
    remap[list(classes)] = np.arange(len(classes))
    labels_train, labels_test = remap[labels_pool[idx_train]], remap[labels_pool[idx_test]]
    x_train, x_test, stats = standardize(x_pool[idx_train], x_pool[idx_test])
    x_train, x_test = x_train.reshape((-1, *input_shape)), x_test.reshape((-1, *input_shape))
    stats = {k: v.reshape(input_shape) for k, v in stats.items()}
    k = len(classes)
    return params._task(
        seed, x_train, class_targets(labels_train, k), x_test, class_targets(labels_test, k),
        **classification_meta(labels_train, labels_test, k),
        classes=tuple(classes), standardization=stats, indices_train=idx_train, indices_test=idx_test, **meta,
    )


@dataclass(frozen=True, kw_only=True)
class DigitsParams(TaskParams):
    """scikit-learn's handwritten digits: 1797 grey-level 8x8 images, 10 classes (bundled, offline).

    Data model: the pool is ``sklearn.datasets.load_digits`` (pixel values 0..16), optionally
    restricted to ``classes``; split and standardised as described in the module docstring.
    ``layout="flat"`` gives inputs of shape ``(64,)``, ``"spatial"`` ``(8, 8, 1)`` (channels-last,
    for conv2d networks).

    Reference: Alpaydin & Kaynak 1998, "Optical Recognition of Handwritten Digits" (UCI Machine
    Learning Repository; the test set of 1797 samples shipped with scikit-learn).
    """

    name: ClassVar[str] = "digits"
    kind: ClassVar[str] = "classification"
    n_train: int = 1000
    n_test: int = 797
    classes: tuple[int, ...] | None = None
    layout: str = "flat"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_classes(self, "classes", DIGITS)
        check_choice(self, "layout", ("flat", "spatial"))
        _check_pool(self, _digits_pool()[1], self.classes)

    def generate(self, *, seed: int) -> Task:
        x, labels = _digits_pool()
        shape = (64,) if self.layout == "flat" else (8, 8, 1)
        return _split_standardize(
            self, seed, x, labels, self.classes or DIGITS, shape, source="sklearn.datasets.load_digits"
        )


@dataclass(frozen=True, kw_only=True)
class BreastCancerParams(TaskParams):
    """Wisconsin diagnostic breast cancer: 569 samples, 30 real features, binary (bundled, offline).

    Data model: the pool is ``sklearn.datasets.load_breast_cancer``; split and standardised as
    described in the module docstring. Label 0 is "malignant" (target -1), label 1 "benign"
    (target +1), as in scikit-learn.

    Reference: Street, Wolberg & Mangasarian 1993, "Nuclear feature extraction for breast tumor
    diagnosis" (IS&T/SPIE Biomedical Image Processing; UCI Breast Cancer Wisconsin (Diagnostic)).
    """

    name: ClassVar[str] = "breast_cancer"
    kind: ClassVar[str] = "classification"
    n_train: int = 400
    n_test: int = 169

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_pool(self, _breast_cancer_pool()[1], None)

    def generate(self, *, seed: int) -> Task:
        x, labels = _breast_cancer_pool()
        return _split_standardize(
            self, seed, x, labels, (0, 1), (30,),
            source="sklearn.datasets.load_breast_cancer", class_names=("malignant", "benign"),
        )


@dataclass(frozen=True, kw_only=True)
class MNIST1DParams(TaskParams):
    """MNIST-1D: procedurally generated 40-step sequences of 10 digit templates (offline).

    Data model: a pool of ``pool_size`` sequences (``pool_size / 10`` per class) from mnist1d's
    generator ``mnist1d.data.make_dataset`` with its default transformation arguments (padding,
    translation, shear, scale, correlated and iid noise) and a generator seed derived from the task
    seed (``meta["pool_seed"]``); optionally restricted to ``classes``; split and standardised as
    described in the module docstring. ``pool_size=None`` means the standard 5000 sequences, or the
    smallest multiple of 10 that holds n_train + n_test samples of the chosen classes if that is
    larger (``meta["pool_size"]``): so for a fixed seed, every split that fits in 5000 draws from
    the same pool and larger n_train extends smaller ones. An explicit ``pool_size`` must be a
    multiple of 10 and hold the split. ``layout="flat"`` gives inputs ``(40,)``, ``"spatial"``
    ``(40, 1)`` (channels-last, for conv1d networks). Generating 5000 sequences takes ~2.5 s; the
    last few pools are cached in memory.

    Reference: Greydanus & Kobak 2024 (ICML, "Scaling down deep learning with MNIST-1D").
    """

    name: ClassVar[str] = "mnist1d"
    kind: ClassVar[str] = "classification"
    n_train: int = 4000
    n_test: int = 1000
    classes: tuple[int, ...] | None = None
    layout: str = "flat"
    pool_size: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_classes(self, "classes", DIGITS)
        check_choice(self, "layout", ("flat", "spatial"))
        if self.pool_size is not None:
            check_int(self, "pool_size", low=10, what="None or a multiple of 10 >= 10")
            if self.pool_size % 10:
                raise TaskError(f"must be None or a multiple of 10 >= 10; got {self.pool_size}", key="pool_size", owner="task")
            n_classes = len(self.classes or DIGITS)
            available = self.pool_size // 10 * n_classes
            if self.n_train + self.n_test > available:
                restricted = f" with task.classes = {list(self.classes)}" if self.classes is not None else ""
                raise TaskError(
                    f"task.n_train + task.n_test = {self.n_train + self.n_test} exceeds the {available} samples "
                    f"of 'mnist1d'{restricted} (task.pool_size = {self.pool_size})"
                )

    def resolved_pool_size(self) -> int:
        if self.pool_size is not None:
            return self.pool_size
        per_class = math.ceil((self.n_train + self.n_test) / len(self.classes or DIGITS))
        return max(MNIST1D_DEFAULT_POOL, 10 * per_class)

    def generate(self, *, seed: int) -> Task:
        pool_seed = derived_seed(seed, self.name, "pool")
        pool_size = self.resolved_pool_size()
        x, labels = _mnist1d_pool(pool_seed, pool_size)
        shape = (MNIST1D_LENGTH,) if self.layout == "flat" else (MNIST1D_LENGTH, 1)
        return _split_standardize(
            self, seed, x, labels, self.classes or DIGITS, shape,
            source="mnist1d.data.make_dataset", pool_seed=pool_seed, pool_size=pool_size,
        )
