"""Dependencies flow one way: every import inside genlab goes to its own package or a lower layer.

The layers, lowest first (a package may import its own modules and anything of a lower rank,
nothing of its own rank or above):

0. bottom modules: ``genlab`` itself (``__version__``), ``_checks``, ``_arrays``, ``_stability``,
   ``settings``, ``quantities``, ``context`` (the fields both sides' cell contexts share);
1. libraries: ``models``, ``linear``, ``optim``;
2. ``tasks`` and ``kernels`` (both build on ``models``);
3. the two sides: ``theory`` and ``empirical``, which never import each other;
4. ``study``, the runner that pairs them;
5. ``parallel``, the ``train-parallel`` application (reuses the study's schema and table);
6. ``paper`` and ``docs``;
7. ``cli``, the entry point.

Every import statement counts, including the lazy ones inside functions and those under
``TYPE_CHECKING``: a deferred import is still a dependency of the module's code.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import genlab

PACKAGE_ROOT = Path(genlab.__file__).parent

RANKS: dict[str, int] = {
    "genlab": 0,
    "_checks": 0,
    "_arrays": 0,
    "_stability": 0,
    "settings": 0,
    "quantities": 0,
    "context": 0,
    "models": 1,
    "linear": 1,
    "optim": 1,
    "tasks": 2,
    "kernels": 2,
    "theory": 3,
    "empirical": 3,
    "study": 4,
    "parallel": 5,
    "paper": 6,
    "docs": 6,
    "cli": 7,
}

#: Bottom modules may import each other (``_stability`` checks its arguments with ``_checks``);
#: above the bottom, a package never imports another package of its own rank.
BOTTOM = 0


def component(module: str) -> str:
    """The layer component of a dotted genlab module name: ``genlab.theory.landscape`` ->
    ``theory``, ``genlab.settings`` -> ``settings``, ``genlab`` -> ``genlab``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def module_name(path: Path, root: Path) -> str:
    relative = path.relative_to(root.parent).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every genlab module the source imports, relative imports
    resolved against ``module``. ``from genlab import x`` counts as an import of ``genlab.x``
    (of ``genlab`` itself for a dunder name such as ``__version__``)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target == "genlab":  # a dunder such as __version__ is the package itself
                for alias in node.names:
                    yield node.lineno, "genlab" if alias.name.startswith("__") else f"genlab.{alias.name}"
            else:
                yield node.lineno, target


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """The imports of ``source`` (the code of genlab module ``module``) that break the layering."""
    own = component(module)
    found = []
    for line, target in imported_modules(source, module, is_package):
        if target != "genlab" and not target.startswith("genlab."):
            continue
        other = component(target)
        if other not in RANKS:
            found.append(f"{module}:{line} imports {target}, which is in no layer of RANKS")
            continue
        if other == own:
            continue
        upward = RANKS[other] > RANKS[own]
        sideways = RANKS[other] == RANKS[own] and RANKS[own] != BOTTOM
        if upward or sideways:
            kind = "upward" if upward else "sideways"
            found.append(f"{module}:{line} imports {target} ({kind}: {own} is rank {RANKS[own]}, "
                         f"{other} rank {RANKS[other]})")
    return found


def test_every_genlab_module_is_in_a_layer() -> None:
    components = {component(module_name(p, PACKAGE_ROOT)) for p in PACKAGE_ROOT.rglob("*.py")}
    assert components - set(RANKS) == set()


def test_imports_flow_from_higher_layers_to_lower_ones_only() -> None:
    found = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        module = module_name(path, PACKAGE_ROOT)
        found += violations(path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py")
    assert found == []


def test_the_check_catches_theory_importing_empirical_lazily_and_models_importing_tasks() -> None:
    # the walker must see a function-local import, a relative import and `from genlab import x`
    theory_source = "def f():\n    from genlab.empirical._train import train\n"
    assert violations(theory_source, "genlab.theory.implicit_bias") == [
        "genlab.theory.implicit_bias:2 imports genlab.empirical._train (sideways: theory is rank 3, empirical rank 3)"
    ]
    assert violations("from ..tasks import make_task\n", "genlab.models._spec") == [
        "genlab.models._spec:1 imports genlab.tasks (upward: models is rank 1, tasks rank 2)"
    ]
    assert violations("from genlab import study\n", "genlab.kernels") == [
        "genlab.kernels:1 imports genlab.study (upward: kernels is rank 2, study rank 4)"
    ]
    assert violations("from genlab import __version__\nfrom genlab._checks import real\n", "genlab.kernels") == []
