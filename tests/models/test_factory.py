"""Networks from the user's code (model.factory = "module.path:function"): import, call, checks.

Each test writes its factory module into its own folder under a fresh module name, and removes
it from sys.modules afterwards, so tests do not see each other's modules.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from genlab.models._factory import FactoryError, build_factory_model, load_factory, source_sha256

MLP = """
import torch
from torch import nn

def make(input_shape, out_dim, width, seed, dtype, depth=1):
    layers, fan_in = [nn.Flatten()], 1
    for s in input_shape:
        fan_in *= s
    for _ in range(depth):
        layers += [nn.Linear(fan_in, width), nn.Tanh()]
        fan_in = width
    layers.append(nn.Linear(fan_in, out_dim))
    return nn.Sequential(*layers)  # default init from torch's global generator; dtype ignored

def not_a_module(**kwargs):
    return 3

def wrong_width(input_shape, out_dim, width, seed, dtype):
    return nn.Linear(input_shape[0], out_dim + 1)

def no_kwargs(input_shape):
    return nn.Identity()
"""


@pytest.fixture
def module_name() -> Iterator[str]:
    name = f"user_models_{uuid.uuid4().hex[:8]}"
    yield name
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def _write(folder: Path, name: str, source: str = MLP) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def _build(name: str, folder: Path, reference: str = "make", **kwargs: object) -> torch.nn.Module:
    options: dict = {"input_shape": (4,), "out_dim": 2, "width": 8, "seed": 0, "dtype": torch.float64}
    options.update(kwargs)
    return build_factory_model(f"{name}:{reference}", folder=folder, **options)  # type: ignore[arg-type]


def test_the_factory_is_seeded_moved_to_the_dtype_and_given_its_args(tmp_path: Path, module_name: str) -> None:
    _write(tmp_path, module_name)
    a, b = _build(module_name, tmp_path, seed=5), _build(module_name, tmp_path, seed=5)
    c = _build(module_name, tmp_path, seed=6)
    assert all(p.dtype == torch.float64 for p in a.parameters())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))
    deep = _build(module_name, tmp_path, args={"depth": 3})
    assert sum(isinstance(m, torch.nn.Linear) for m in deep.modules()) == 4
    state = torch.random.get_rng_state()
    _build(module_name, tmp_path)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's generator is left as it was


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("not_a_module", r"^model\.factory {name}:not_a_module must return a torch\.nn\.Module; it returned int$"),
        ("wrong_width", r"must return a module mapping \(n, \*\(4,\)\) to \(n, 2\); on \(2, \*\(4,\)\) it returned "
                        r"\(2, 3\)$"),
        ("no_kwargs", r"must accept input_shape, out_dim, width, seed, dtype .*; calling it failed"),
        ("missing", r"must name a callable: module '{name}' \(.*\) has no function 'missing'$"),
    ],
)
def test_unusable_factories_are_named(tmp_path: Path, module_name: str, reference: str, message: str) -> None:
    _write(tmp_path, module_name)
    with pytest.raises(FactoryError, match=message.format(name=module_name)):
        _build(module_name, tmp_path, reference)


def test_bad_references_and_modules(tmp_path: Path, module_name: str) -> None:
    with pytest.raises(FactoryError, match=r"^model\.factory must be 'module\.path:function'; got 'resnet'$"):
        load_factory("resnet", tmp_path)
    with pytest.raises(FactoryError, match=rf"importing '{module_name}' from the study folder .* failed"):
        load_factory(f"{module_name}:make", tmp_path)
    _write(tmp_path, module_name)
    with pytest.raises(FactoryError, match=r"^model\.args may not set width: genlab passes them"):
        _build(module_name, tmp_path, args={"width": 3})


def test_the_study_folder_comes_first_and_one_name_cannot_mean_two_files(tmp_path: Path, module_name: str) -> None:
    first = _write(tmp_path / "a", module_name)
    _, source = load_factory(f"{module_name}:make", tmp_path / "a")
    assert source.file == first and str(tmp_path / "a") not in sys.path
    _write(tmp_path / "b", module_name)
    with pytest.raises(FactoryError, match=r"not already loaded from another file"):
        load_factory(f"{module_name}:make", tmp_path / "b")


def test_the_source_hash_follows_the_code(tmp_path: Path, module_name: str) -> None:
    package = tmp_path / module_name
    _write(package, "__init__", "from .net import make\n")
    net = _write(package, "net")
    _, source = load_factory(f"{module_name}:make", tmp_path)
    assert set(source.files) == {package / "__init__.py", net}
    before = source_sha256(source.files)
    net.write_text(MLP.replace("nn.Tanh()", "nn.ReLU()"), encoding="utf-8")
    assert source_sha256(source.files) != before
