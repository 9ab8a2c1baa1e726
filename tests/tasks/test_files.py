"""Tasks read from the user's disk: .npz archives, IDX (MNIST) folders, CIFAR-10 binary batches.

Every test writes its own small files in the real format (headers and record layouts as the
format documents specify), so the readers are checked against an independent writer here, not
against their own output. Values are small integers or exactly representable floats, and the
standardisation reference is numpy's mean/std on the same float64 arrays: equal to 1e-12.
"""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from genlab.tasks import TaskError
from genlab.tasks._files import ArraysParams, Cifar10Params, IdxParams


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _classification_npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return _npz(tmp_path / "data.npz", x_train=rng.integers(0, 9, (30, 4)).astype(np.float64),
                y_train=np.tile([3, 7], 15), x_test=rng.integers(0, 9, (10, 4)).astype(np.float64),
                y_test=np.tile([7, 3], 5))


def test_integer_labels_give_pm1_targets_and_the_archive_split_is_kept(tmp_path: Path) -> None:
    path = _classification_npz(tmp_path)
    task = ArraysParams(path=str(path)).generate(seed=0)
    raw = np.load(path)
    assert task.meta["kind"] == "classification" and task.meta["classes"] == (3, 7)
    np.testing.assert_array_equal(task.y_train[:, 0], np.where(raw["y_train"] == 7, 1.0, -1.0))
    mean, std = raw["x_train"].mean(axis=0), raw["x_train"].std(axis=0)
    np.testing.assert_allclose(task.x_train, (raw["x_train"] - mean) / std, rtol=0, atol=1e-12)
    np.testing.assert_allclose(task.x_test, (raw["x_test"] - mean) / std, rtol=0, atol=1e-12)


def test_subsamples_are_drawn_with_the_task_seed(tmp_path: Path) -> None:
    params = ArraysParams(path=str(_classification_npz(tmp_path)), n_train=12, n_test=4, standardize=False)
    a, b, c = params.generate(seed=1), params.generate(seed=1), params.generate(seed=2)
    assert a.x_train.shape == (12, 4) and a.x_test.shape == (4, 4)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    rows = {tuple(r) for r in np.load(params.path)["x_train"]}
    assert all(tuple(r) in rows for r in a.x_train)


def test_real_targets_give_a_regression_task(tmp_path: Path) -> None:
    path = _npz(tmp_path / "reg.npz", x_train=np.ones((5, 3)) * np.arange(5)[:, None],
                y_train=np.arange(10.0).reshape(5, 2), x_test=np.zeros((2, 3)), y_test=np.ones((2, 2)))
    task = ArraysParams(path=str(path), standardize=False).generate(seed=0)
    assert task.meta["kind"] == "regression" and task.out_dim == 2
    np.testing.assert_array_equal(task.y_train, np.arange(10.0).reshape(5, 2))


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_train": np.ones((3, 2)), "y_train": np.ones(3), "x_test": np.ones((2, 2))}, r"missing y_test"),
        ({"x_train": np.ones((3, 2)), "y_train": np.ones(4), "x_test": np.ones((2, 2)), "y_test": np.ones(2)},
         r"y_train of shape \(3,\)"),
        ({"x_train": np.ones((3, 2)), "y_train": np.ones(3), "x_test": np.ones((2, 5)), "y_test": np.ones(2)},
         r"one input shape"),
        ({"x_train": np.array([[1.0, np.nan]] * 3), "y_train": np.ones(3), "x_test": np.ones((2, 2)),
          "y_test": np.ones(2)}, r"finite values \(x_train has 3 non-finite\)"),
    ],
)
def test_bad_archives_name_the_key_and_the_file(tmp_path: Path, arrays: dict, message: str) -> None:
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(TaskError, match=rf"^task\.path must be a \.npz file .*{message}.*; got '{path}'$"):
        ArraysParams(path=str(path)).generate(seed=0)


def test_missing_file_and_too_few_samples(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match=r"^task\.path must be .*\(no such file\); got '.*nowhere\.npz'$"):
        ArraysParams(path=str(tmp_path / "nowhere.npz")).generate(seed=0)
    path = _classification_npz(tmp_path)
    with pytest.raises(TaskError, match=rf"^task\.n_test must be at most the 10 test samples of '{path}'; got 11$"):
        ArraysParams(path=str(path), n_test=11).generate(seed=0)


class _Planted:
    """Unpickling this object would create a file: the reader must refuse before that."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.target,))


def test_an_object_array_is_refused_without_unpickling(tmp_path: Path) -> None:
    target = tmp_path / "unpickled"
    objects = np.empty(3, dtype=object)
    objects[:] = [_Planted(target)] * 3
    path = _npz(tmp_path / "evil.npz", x_train=objects, y_train=np.ones(3), x_test=np.ones((2, 2)), y_test=np.ones(2))
    with pytest.raises(TaskError, match=r"^task\.path must be a \.npz file .*unreadable"):
        ArraysParams(path=str(path)).generate(seed=0)
    assert not target.exists()


# ---------------------------------------------------------------------------------------------
# IDX


def _idx(array: np.ndarray, code: int) -> bytes:
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(
        {0x08: ">u1", 0x0D: ">f4"}[code]).tobytes()


def _mnist_folder(folder: Path, *, gz: bool) -> dict[str, np.ndarray]:
    folder.mkdir()
    rng = np.random.default_rng(3)
    arrays = {"x_train": rng.integers(0, 256, (20, 4, 3)), "y_train": np.arange(20) % 10,
              "x_test": rng.integers(0, 256, (10, 4, 3)), "y_test": np.arange(10)[::-1]}
    names = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}
    for key, name in names.items():
        data = _idx(arrays[key], 0x08)
        if gz and key.startswith("x"):
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_folders_are_read_as_written(tmp_path: Path, gz: bool) -> None:
    arrays = _mnist_folder(tmp_path / "mnist", gz=gz)
    spatial = IdxParams(path=str(tmp_path / "mnist"), layout="spatial", standardize=False).generate(seed=0)
    np.testing.assert_array_equal(spatial.x_train, arrays["x_train"][..., None])
    np.testing.assert_array_equal(spatial.meta["labels_test"], arrays["y_test"])
    flat = IdxParams(path=str(tmp_path / "mnist"), standardize=False).generate(seed=0)
    assert flat.input_shape == (12,) and flat.out_dim == 10
    restricted = IdxParams(path=str(tmp_path / "mnist"), classes=[1, 8], standardize=False).generate(seed=0)
    assert restricted.n_train == 4 and restricted.meta["classes"] == (1, 8)


def test_idx_bad_magic_and_bad_length_name_the_file(tmp_path: Path) -> None:
    _mnist_folder(tmp_path / "mnist", gz=False)
    labels = tmp_path / "mnist" / "train-labels-idx1-ubyte"
    labels.write_bytes(b"\x08\x03" + labels.read_bytes()[2:])
    with pytest.raises(TaskError, match=r"train-labels-idx1-ubyte has no IDX magic number: expected 00 00 <type> "
                                        r"<ndim>, found 08 03 08 01\); got '.*mnist'$"):
        IdxParams(path=str(tmp_path / "mnist")).generate(seed=0)
    labels.write_bytes(_idx(np.arange(20) % 10, 0x08)[:-1])
    with pytest.raises(TaskError, match=r"holds 19 data bytes; its header \(20,\) says 20"):
        IdxParams(path=str(tmp_path / "mnist")).generate(seed=0)
    labels.write_bytes(_idx(np.arange(19) % 10, 0x08))
    with pytest.raises(TaskError, match=r"train images .* and integer labels \(n,\) agree"):
        IdxParams(path=str(tmp_path / "mnist")).generate(seed=0)


# ---------------------------------------------------------------------------------------------
# CIFAR-10


def _cifar_folder(folder: Path, per_batch: int = 3) -> list[np.ndarray]:
    """Batches whose pixel (r, c, channel) of record i is (i + 7 r + 3 c + 100 channel) mod 256."""
    folder.mkdir()
    written = []
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    for b, name in enumerate(names):
        records = []
        for i in range(per_batch):
            label = (b + i) % 10
            r, c = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
            planes = [(b * 10 + i + 7 * r + 3 * c + 100 * ch) % 256 for ch in range(3)]  # R, G, B planes
            records.append(bytes([label]) + b"".join(p.astype(np.uint8).tobytes() for p in planes))
            written.append(np.stack(planes, axis=-1))
        (folder / name).write_bytes(b"".join(records))
    return written


def test_cifar10_records_become_channels_last_images(tmp_path: Path) -> None:
    images = _cifar_folder(tmp_path / "cifar")
    task = Cifar10Params(path=str(tmp_path / "cifar"), standardize=False).generate(seed=0)
    assert task.x_train.shape == (15, 32, 32, 3) and task.x_test.shape == (3, 32, 32, 3)
    np.testing.assert_array_equal(task.x_train, np.stack(images[:15]))
    np.testing.assert_array_equal(task.meta["labels_test"], [5, 6, 7])
    assert Cifar10Params(path=str(tmp_path / "cifar"), layout="flat").generate(seed=0).input_shape == (3072,)


def test_cifar10_truncated_batch_and_missing_batch(tmp_path: Path) -> None:
    _cifar_folder(tmp_path / "cifar")
    batch = tmp_path / "cifar" / "data_batch_2.bin"
    batch.write_bytes(batch.read_bytes()[:-1])
    with pytest.raises(TaskError, match=r"data_batch_2\.bin has 9218 bytes, not a multiple of the 3073-byte record"):
        Cifar10Params(path=str(tmp_path / "cifar")).generate(seed=0)
    batch.unlink()
    with pytest.raises(TaskError, match=r"^task\.path must be .*data_batch_2\.bin not found\); got '.*cifar'$"):
        Cifar10Params(path=str(tmp_path / "cifar")).generate(seed=0)


def test_the_data_hash_follows_the_bytes_not_the_folder(tmp_path: Path) -> None:
    _mnist_folder(tmp_path / "mnist", gz=True)
    before = IdxParams(path=str(tmp_path / "mnist")).data_hash()
    shutil.copytree(tmp_path / "mnist", tmp_path / "moved")
    assert IdxParams(path=str(tmp_path / "moved")).data_hash() == before
    labels = tmp_path / "moved" / "t10k-labels-idx1-ubyte"
    labels.write_bytes(_idx(np.arange(10) % 10, 0x08))
    assert IdxParams(path=str(tmp_path / "moved")).data_hash() != before
    task = IdxParams(path=str(tmp_path / "mnist")).generate(seed=0)
    assert task.meta["data_sha256"] == before
