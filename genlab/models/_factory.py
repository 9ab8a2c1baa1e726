"""Networks from the user's own code: ``factory = "module.path:function"`` in a study's ``[model]``.

The factory is called as ``function(input_shape=..., out_dim=..., width=..., seed=..., dtype=...,
**args)`` and must return a ``torch.nn.Module`` mapping ``(n, *input_shape)`` to ``(n, out_dim)``.
genlab seeds torch's global generator with ``seed`` around the call (so a factory that draws its
initialisation from torch's default generator is deterministic too), moves the result to
``dtype`` and checks the output shape on a zero batch of two inputs.

``module.path`` is imported from the study file's folder first, then from ``sys.path``; the
module must not already be loaded from another file (two studies naming different files under
one module name would otherwise silently share the first). Importing a module runs its code, as
running the user's script would: genlab imports only modules a study names, and reports each one
with its file (:class:`FactorySource`); :func:`source_sha256` hashes the module's file bytes (a
package: every ``.py`` file under it) so that a cache keyed on it recomputes when the code
changes.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from genlab._checks import InvalidArgument

_REFERENCE = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):([A-Za-z_]\w*)$")

#: Keyword arguments genlab passes to every factory; ``[model.args]`` may not reuse them.
FACTORY_KEYWORDS = ("input_shape", "out_dim", "width", "seed", "dtype")


class FactoryError(InvalidArgument):
    """The factory named by ``model.factory`` cannot be imported, called or used."""


def _error(message: str, key: str = "factory") -> FactoryError:
    return FactoryError(message, key=key, owner="model")


@dataclass(frozen=True)
class FactorySource:
    """Where a factory came from: its reference, the module's file and the files hashed."""

    reference: str
    module: str
    file: Path
    files: tuple[Path, ...]


def _module_files(module: ModuleType) -> tuple[Path, ...]:
    file = Path(module.__file__ or "")
    if file.name == "__init__.py":
        return tuple(sorted(file.parent.rglob("*.py")))
    return (file,)


def source_sha256(files: tuple[Path, ...]) -> str:
    """SHA-256 over the files' names (relative to the first file's folder) and bytes, in order."""
    digest = hashlib.sha256()
    root = files[0].parent
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _file_in(folder: Path, module_name: str) -> Path | None:
    """The file ``module_name`` resolves to inside ``folder`` (module or package), if any."""
    base = folder.joinpath(*module_name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _import(module_name: str, folder: Path | None) -> ModuleType:
    """Import ``module_name``, from ``folder`` if it holds the module, else from ``sys.path``."""
    local = _file_in(folder, module_name) if folder is not None else None
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        file = Path(getattr(loaded, "__file__", None) or "")
        if local is not None and file.resolve() != local.resolve():
            raise _error(f"must name a module not already loaded from another file: {module_name!r} is loaded "
                         f"from {file}, the study folder has {local}")
        return loaded
    if local is not None:
        sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        where = f"the study folder {folder} or sys.path" if folder is not None else "sys.path"
        raise _error(f"must name an importable module: importing {module_name!r} from {where} failed: {exc}") from None
    finally:
        if local is not None:
            sys.path.remove(str(folder))


def load_factory(reference: str, folder: str | Path | None = None) -> tuple[Callable[..., Any], FactorySource]:
    """The callable ``reference`` ("module.path:function") names, imported as the module docstring says."""
    match = _REFERENCE.match(reference) if isinstance(reference, str) else None
    if match is None:
        raise _error(f"must be 'module.path:function'; got {reference!r}")
    module_name, attribute = match.groups()
    module = _import(module_name, Path(folder).resolve() if folder is not None else None)
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise _error(f"must name a callable: module {module_name!r} ({module.__file__}) has no function {attribute!r}")
    files = _module_files(module)
    return factory, FactorySource(reference, module_name, Path(module.__file__ or ""), files)


def build_factory_model(
    reference: str,
    *,
    folder: str | Path | None,
    input_shape: tuple[int, ...],
    out_dim: int,
    width: int,
    seed: int,
    dtype: torch.dtype,
    args: Mapping[str, Any] | None = None,
) -> nn.Module:
    """The network ``reference``'s factory returns for these arguments, checked and in ``dtype``."""
    args = dict(args or {})
    clash = sorted(set(args) & set(FACTORY_KEYWORDS))
    if clash:
        raise _error(f"may not set {', '.join(clash)}: genlab passes them to the factory itself", key="args")
    factory, _ = load_factory(reference, folder)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            module = factory(input_shape=tuple(input_shape), out_dim=out_dim, width=width, seed=seed, dtype=dtype,
                             **args)
        except TypeError as exc:
            raise _error(f"{reference} must accept input_shape, out_dim, width, seed, dtype and the keys of "
                         f"[model.args]; calling it failed: {exc}") from None
    if not isinstance(module, nn.Module):
        raise _error(f"{reference} must return a torch.nn.Module; it returned {type(module).__name__}")
    module = module.to(dtype)
    with torch.no_grad():
        out = module(torch.zeros((2, *input_shape), dtype=dtype))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, out_dim):
        found = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise _error(f"{reference} must return a module mapping (n, *{tuple(input_shape)}) to (n, {out_dim}); "
                     f"on (2, *{tuple(input_shape)}) it returned {found}")
    return module
