"""Data sets from the user's disk: a numpy archive, the IDX files of MNIST / Fashion-MNIST, and
the binary version of CIFAR-10. Nothing is downloaded and nothing is unpickled.

Formats:

- ``arrays``: one ``.npz`` archive holding ``x_train, y_train, x_test, y_test`` (read with
  ``numpy.load(allow_pickle=False)``, so an object array is refused rather than unpickled).
  Inputs ``(n, *input_shape)``; targets ``(n,)`` integer class labels, or ``(n,)`` / ``(n, k)``
  real targets. Integer labels make a classification task (two classes give ±1 targets, more a
  one-hot matrix, as for the built-in tasks); floating targets a regression task.
- ``idx``: the four files of LeCun et al.'s MNIST distribution, ``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each raw or
  gzipped (``.gz``); Fashion-MNIST (Xiao et al. 2017) uses the same names and format. An IDX file
  is a big-endian header: two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B
  int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions, then one uint32 per
  dimension, followed by the data.
- ``cifar10``: the "CIFAR-10 binary version" (Krizhevsky 2009): ``data_batch_1.bin`` ...
  ``data_batch_5.bin`` and ``test_batch.bin``, each a sequence of 3073-byte records (one label
  byte, then 1024 red, 1024 green and 1024 blue bytes of a 32x32 image in row-major order),
  read as ``(32, 32, 3)`` channels-last images.

Each file task keeps its file's train/test split: ``n_train`` samples are drawn without
replacement from the train part with the task seed and ``n_test`` from the test part (None: all
of them, in file order), and inputs are standardised with the train mean and std
(``standardize = true``, as the built-in real tasks do; ``meta["standardization"]``).
``meta["data_sha256"]`` is the SHA-256 of the files' bytes (:meth:`FileTaskParams.data_hash`),
so that a cache keyed on it recomputes when the data change and not when the folder moves.

Every failure names the key and the file: ``task.path must be ...; got '...'`` for a missing or
unreadable file, a wrong magic number, inconsistent shapes, non-finite values, or fewer samples
than ``n_train`` / ``n_test``.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from genlab._checks import boolean, integer
from genlab.tasks._task import (
    Task,
    TaskError,
    TaskParams,
    check_choice,
    check_classes,
    class_targets,
    classification_meta,
    rng,
    standardize,
)

DIGITS = tuple(range(10))

#: IDX type code -> numpy big-endian dtype (LeCun et al., "THE MNIST DATABASE", file formats).
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST = "test_batch.bin"
CIFAR10_RECORD = 1 + 32 * 32 * 3
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _bad(message: str, path: Path | str) -> TaskError:
    return TaskError(f"must be {message}; got {str(path)!r}", key="path", owner="task")


@dataclass(frozen=True)
class _Split:
    """A file's samples: inputs, and integer labels or real targets, for train and for test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    files: tuple[Path, ...]


# ---------------------------------------------------------------------------------------------
# Readers: bytes on disk -> arrays, every inconsistency reported against task.path.


def read_npz(path: Path) -> _Split:
    """``x_train, y_train, x_test, y_test`` of a numpy archive, checked for shapes and finiteness."""
    expected = "a .npz file holding x_train, y_train, x_test and y_test"
    if not path.is_file():
        raise _bad(f"{expected} (no such file)", path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            if missing:
                raise _bad(f"{expected} (missing {', '.join(missing)})", path)
            arrays = {key: np.asarray(archive[key]) for key in NPZ_KEYS}
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        if isinstance(exc, TaskError):
            raise
        raise _bad(f"{expected} (unreadable: {exc})", path) from None
    for key, arr in arrays.items():
        if arr.dtype.kind not in "biuf":
            raise _bad(f"{expected} with numeric arrays ({key} has dtype {arr.dtype})", path)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise _bad(f"{expected} with finite values ({key} has {int((~np.isfinite(arr)).sum())} non-finite)", path)
    x_train, y_train, x_test, y_test = (arrays[key] for key in NPZ_KEYS)
    if x_train.ndim < 2 or x_test.ndim < 2 or x_train.shape[1:] != x_test.shape[1:]:
        raise _bad(f"{expected} with x_train (n, ...) and x_test (m, ...) of one input shape "
                   f"(found {x_train.shape} and {x_test.shape})", path)
    for name, y, x in (("y_train", y_train, x_train), ("y_test", y_test, x_test)):
        if y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
            raise _bad(f"{expected} with {name} of shape ({x.shape[0]},) or ({x.shape[0]}, k) (found {y.shape})", path)
    if (y_train.dtype.kind in "biu") != (y_test.dtype.kind in "biu") or y_train.shape[1:] != y_test.shape[1:]:
        raise _bad(f"{expected} with y_train and y_test of one kind and width "
                   f"(found {y_train.dtype} {y_train.shape} and {y_test.dtype} {y_test.shape})", path)
    if y_train.dtype.kind in "biu" and y_train.ndim != 1:
        raise _bad(f"{expected} with integer class labels of shape (n,) (found y_train {y_train.shape})", path)
    return _Split(x_train, y_train, x_test, y_test, (path,))


def _open_maybe_gzipped(folder: Path, name: str) -> tuple[Path, bytes]:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            try:
                data = candidate.read_bytes()
                return candidate, gzip.decompress(data) if candidate.suffix == ".gz" else data
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise _bad(f"a folder of IDX files ({candidate.name} is unreadable: {exc})", folder) from None
    raise _bad(f"a folder of IDX files ({name} or {name}.gz not found)", folder)


def read_idx(data: bytes, name: str, folder: Path) -> np.ndarray:
    """The array of one IDX file's bytes (``name`` and ``folder`` only name it in errors)."""
    where = f"a folder of IDX files ({name}"
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in IDX_TYPES:
        raise _bad(f"{where} has no IDX magic number: expected 00 00 <type> <ndim>, found {data[:4].hex(' ')})", folder)
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise _bad(f"{where} has a truncated header)", folder)
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[data[2]])
    size = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != size:
        raise _bad(f"{where} holds {len(data) - header} data bytes; its header {shape} says {size})", folder)
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def read_idx_folder(folder: Path) -> _Split:
    """MNIST-format images and labels of ``folder`` (raw or gzipped), checked for consistency."""
    if not folder.is_dir():
        raise _bad("a folder of IDX files (no such folder)", folder)
    arrays, files = {}, []
    for key, name in IDX_FILES.items():
        path, data = _open_maybe_gzipped(folder, name)
        arrays[key] = read_idx(data, path.name, folder)
        files.append(path)
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.ndim < 2 or y.ndim != 1 or x.shape[0] != y.shape[0] or y.dtype.kind not in "iu":
            raise _bad(f"a folder of IDX files whose {part} images (n, rows, cols) and integer labels (n,) agree "
                       f"(found {x.shape} and {y.shape} {y.dtype})", folder)
    if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
        raise _bad(f"a folder of IDX files with train and test images of one shape "
                   f"(found {arrays['x_train'].shape[1:]} and {arrays['x_test'].shape[1:]})", folder)
    return _Split(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], tuple(files))


def _cifar_records(path: Path, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise _bad(f"a folder of CIFAR-10 binary batches ({path.name} not found)", folder)
    data = np.fromfile(path, dtype=np.uint8)
    if data.size == 0 or data.size % CIFAR10_RECORD:
        raise _bad(f"a folder of CIFAR-10 binary batches ({path.name} has {data.size} bytes, "
                   f"not a multiple of the {CIFAR10_RECORD}-byte record)", folder)
    records = data.reshape(-1, CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise _bad(f"a folder of CIFAR-10 binary batches ({path.name} has label {int(labels.max())} > 9)", folder)
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def read_cifar10_folder(folder: Path) -> _Split:
    """The five training batches and the test batch of CIFAR-10's binary version."""
    if not folder.is_dir():
        raise _bad("a folder of CIFAR-10 binary batches (no such folder)", folder)
    train = [_cifar_records(folder / name, folder) for name in CIFAR10_TRAIN]
    x_test, y_test = _cifar_records(folder / CIFAR10_TEST, folder)
    files = tuple(folder / name for name in (*CIFAR10_TRAIN, CIFAR10_TEST))
    return _Split(np.concatenate([x for x, _ in train]), np.concatenate([y for _, y in train]), x_test, y_test, files)


@functools.lru_cache(maxsize=4)
def _sha256(files: tuple[Path, ...], stamps: tuple[tuple[int, int], ...]) -> str:
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def files_sha256(files: tuple[Path, ...]) -> str:
    """SHA-256 over the files' names and bytes, in order (cached while size and mtime hold)."""
    stamps = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    return _sha256(files, stamps)


# ---------------------------------------------------------------------------------------------
# The three tasks.


@dataclass(frozen=True, kw_only=True)
class FileTaskParams(TaskParams):
    """Base of the tasks read from disk: ``path``, optional subsample sizes, standardisation.

    ``n_train`` / ``n_test`` None take every sample of the file's train / test part.
    """

    path: str = ""
    n_train: int | None = None  # type: ignore[assignment]
    n_test: int | None = None  # type: ignore[assignment]
    standardize: bool = True

    def __post_init__(self) -> None:
        for key in ("n_train", "n_test"):
            value = getattr(self, key)
            if value is not None:
                object.__setattr__(self, key, integer(value, key, owner="task", minimum=1,
                                                      expected="None or an int >= 1", error=TaskError))
        object.__setattr__(self, "standardize", boolean(self.standardize, "standardize", owner="task", error=TaskError))
        if not isinstance(self.path, str) or not self.path:
            raise TaskError(f"must be a path to the data; got {self.path!r}", key="path", owner="task")

    def read(self) -> _Split:  # pragma: no cover - every file task overrides it
        raise NotImplementedError

    def data_hash(self) -> str:
        """SHA-256 of the data files' names and bytes: what a cache key should hold instead of the path."""
        return files_sha256(self.read().files)

    def chosen_classes(self) -> tuple[int, ...] | None:
        """The class labels a config restricts the data to (None: every class in the file)."""
        return None

    def _subsample(self, seed: int, split: _Split, labels: bool) -> tuple[np.ndarray, ...]:
        parts = []
        chosen = self.chosen_classes()
        for part, requested in (("train", self.n_train), ("test", self.n_test)):
            x, y = getattr(split, f"x_{part}"), getattr(split, f"y_{part}")
            if labels and chosen is not None:
                keep = np.flatnonzero(np.isin(y, chosen))
                x, y = x[keep], y[keep]
            if requested is not None and requested > len(x):
                raise TaskError(f"must be at most the {len(x)} {part} samples of {self.path!r}; got {requested}",
                                key=f"n_{part}", owner="task")
            if requested is not None:
                index = np.sort(rng(seed, self.name, part).choice(len(x), size=requested, replace=False))
                x, y = x[index], y[index]
            parts += [x, y]
        return tuple(parts)

    def _build(self, seed: int, split: _Split, *, layout: str = "spatial", **meta: object) -> Task:
        labels = split.y_train.dtype.kind in "biu"
        x_train, y_train, x_test, y_test = self._subsample(seed, split, labels)
        shape = tuple(x_train.shape[1:]) if layout == "spatial" else (int(np.prod(x_train.shape[1:])),)
        x_train = np.asarray(x_train, dtype=np.float64).reshape(len(x_train), -1)
        x_test = np.asarray(x_test, dtype=np.float64).reshape(len(x_test), -1)
        if self.standardize:
            x_train, x_test, stats = standardize(x_train, x_test)
            meta["standardization"] = {k: v.reshape(shape) for k, v in stats.items()}
        x_train, x_test = x_train.reshape((-1, *shape)), x_test.reshape((-1, *shape))
        meta["data_sha256"] = files_sha256(split.files)
        if not labels:
            y_train = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
            y_test = np.asarray(y_test, dtype=np.float64).reshape(len(y_test), -1)
            return self._task(seed, x_train, y_train, x_test, y_test, **meta, kind="regression")
        classes = tuple(int(c) for c in (self.chosen_classes() or np.union1d(y_train, y_test)))
        if len(classes) < 2:
            raise TaskError(f"must hold at least 2 classes; got only {list(classes)} in {self.path!r}",
                            key="path", owner="task")
        remap = {c: i for i, c in enumerate(classes)}
        labels_train = np.array([remap[int(c)] for c in y_train], dtype=np.int64)
        labels_test = np.array([remap[int(c)] for c in y_test], dtype=np.int64)
        k = len(classes)
        return self._task(seed, x_train, class_targets(labels_train, k), x_test, class_targets(labels_test, k),
                          **classification_meta(labels_train, labels_test, k), **meta, classes=classes,
                          kind="classification")


@dataclass(frozen=True, kw_only=True)
class ArraysParams(FileTaskParams):
    """Your own arrays: a ``.npz`` archive with ``x_train, y_train, x_test, y_test``.

    Data model: the archive's own split (see the module docstring for the formats); integer
    labels of shape ``(n,)`` make a classification task over the classes present (sorted; two
    classes give ±1 targets with the larger label +1, more a one-hot matrix), floating targets
    ``(n,)`` or ``(n, k)`` a regression task. Inputs keep their shape.
    """

    name: ClassVar[str] = "arrays"

    def read(self) -> _Split:
        return read_npz(Path(self.path))

    def generate(self, *, seed: int) -> Task:
        return self._build(seed, self.read(), source=f"npz:{Path(self.path).name}")


@dataclass(frozen=True, kw_only=True)
class _ImageFileParams(FileTaskParams):
    """Image data sets with labels 0..9: an optional class restriction and the input layout."""

    classes: tuple[int, ...] | None = None
    layout: str = "flat"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_classes(self, "classes", DIGITS)
        check_choice(self, "layout", ("flat", "spatial"))

    def chosen_classes(self) -> tuple[int, ...] | None:
        return self.classes


@dataclass(frozen=True, kw_only=True)
class IdxParams(_ImageFileParams):
    """MNIST or Fashion-MNIST from their IDX files in the folder ``path`` (raw or ``.gz``).

    Data model: 60000 train and 10000 test 28x28 grey images with labels 0..9 (LeCun, Bottou,
    Bengio & Haffner 1998; Fashion-MNIST: Xiao, Rasul & Vollgraf 2017), optionally restricted to
    ``classes``. ``layout="flat"`` gives ``(784,)`` inputs (fc networks), ``"spatial"``
    ``(28, 28, 1)`` channels-last (conv2d).
    """

    name: ClassVar[str] = "idx"

    def read(self) -> _Split:
        split = read_idx_folder(Path(self.path))
        if split.x_train.ndim == 3:  # (n, rows, cols) grey images -> channels-last (n, rows, cols, 1)
            return _Split(split.x_train[..., None], split.y_train, split.x_test[..., None], split.y_test, split.files)
        return split

    def generate(self, *, seed: int) -> Task:
        return self._build(seed, self.read(), layout=self.layout, source=f"idx:{Path(self.path).name}")


@dataclass(frozen=True, kw_only=True)
class Cifar10Params(_ImageFileParams):
    """CIFAR-10 from its binary version in the folder ``path``.

    Data model: 50000 train and 10000 test 32x32 colour images in 10 classes (Krizhevsky 2009,
    "Learning multiple layers of features from tiny images"), optionally restricted to
    ``classes``; ``layout="spatial"`` gives ``(32, 32, 3)`` channels-last inputs (conv2d),
    ``"flat"`` ``(3072,)``.
    """

    name: ClassVar[str] = "cifar10"
    layout: str = "spatial"

    def read(self) -> _Split:
        return read_cifar10_folder(Path(self.path))

    def generate(self, *, seed: int) -> Task:
        return self._build(seed, self.read(), layout=self.layout, source=f"cifar10:{Path(self.path).name}")
