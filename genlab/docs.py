"""Generated documentation: the study config reference, the shipped studies, the quantities.

The text is built from the code that validates a study (the pydantic models of
:class:`genlab.study.StudyFile`, the fields of :class:`~genlab.models.ArchSpec`,
:class:`~genlab.settings.TrainSettings` and every task's parameter dataclass, with the
meanings from their ``Attributes:`` docstrings), from ``studies/*.toml`` and from the quantity
registry :data:`genlab.study.QUANTITIES`, so that it cannot drift from them. A markdown file
carries each section between markers::

    <!-- BEGIN GENERATED: reference -->
    ...
    <!-- END GENERATED: reference -->

The documentation files are README.md and docs/*.md (:func:`documentation_files`).
``python -m genlab.docs`` prints every section; ``python -m genlab.docs --write`` replaces the
marked blocks of every documentation file in place (``--write FILE ...``: of those files only);
``--check`` (``--check FILE ...``) exits 1 if a block differs from what the code generates.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import tomllib
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SECTIONS = ("reference", "studies", "quantities")
_BEGIN = "<!-- BEGIN GENERATED: {} -->"
_END = "<!-- END GENERATED: {} -->"

#: Meanings of the keys that no dataclass docstring documents (top level and shared task keys).
_TOP = {
    "name": ("str", "required", "study name: letters, digits, `_`, `-`; the default run directory is `runs/<name>`"),
    "description": ("str", "required", "the hypothesis the study tests (shown above the table; must not be empty)"),
    "quantities": ("list[str]", "required", "quantity names computed by every cell (see the quantities list)"),
    "[task]": ("table", "required", "`name` of the task plus its parameters (below)"),
    "[model]": ("table", "{}", "ArchSpec fields plus `width` and `alpha` (below)"),
    "[train]": ("table", "{}", "training settings (below)"),
    "[grid]": ("table of lists", "{}", "swept keys, `section.field` or a bare field name (bare `seed` = `train.seed`); "
               "cells are the product of the lists, last key fastest"),
    "[table]": ("table", "{}", "layout of the side-by-side table (below); not part of any cell's hash"),
    "[regime]": ("table", "{}", "thresholds of the per-cell regime verdict (below)"),
}
_MODEL_EXTRA = {
    "width": "hidden units (fc) or channels (conv) of every hidden layer",
    "alpha": "output scale: the net becomes alpha (f(x; theta) - f(x; theta_0)), trained on loss / alpha^2 "
             "(Chizat, Oyallon & Bach 2019); large alpha is lazy, small alpha rich; unset: no rescaling",
}
_TASK_COMMON = {
    "name": "the task (one of the tasks below)",
    "seed": "data seed (draws of inputs, teacher and noise); the network seed is `train.seed`",
    "n_train": "training examples",
    "n_test": "test examples",
    "d": "input dimension",
    "noise": "standard deviation of the Gaussian noise added to the training targets",
}
_REGIME = {
    "drift_threshold": "\"kernel\" needs an NTK drift below it, \"feature learning\" a drift above it",
    "error_tolerance": "\"kernel\" needs the test MSE within this relative tolerance of the NTK prediction, or within "
                       "2 predicted standard deviations of one seed's test MSE where that is wider (uncentred networks, "
                       "whose prediction is an expectation over the random initial function); \"feature learning\" "
                       "needs the net to beat it by more than the same tolerance",
}


def _attributes(cls: type) -> dict[str, str]:
    """``name -> meaning`` from the ``Attributes:`` section of a docstring (Google style); a line
    ``a, b, c: text`` documents several names."""
    doc = cls.__doc__ or ""
    match = re.search(r"^\s*Attributes:\s*$(.*?)(?:^\s*$|\Z)", doc, re.MULTILINE | re.DOTALL)
    if not match:
        return {}
    out: dict[str, str] = {}
    current: list[str] = []
    indent: int | None = None
    for line in match.group(1).splitlines():
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        item = re.match(r"^\s*([\w, ]+?):\s+(.*)$", line)
        if item and (indent is None or depth <= indent):
            indent = depth
            current = [n.strip() for n in item.group(1).split(",")]
            for name in current:
                out[name] = item.group(2).strip()
        elif current:
            for name in current:
                out[name] += " " + line.strip()
    return out


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "None"
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return _type_name(args[0])
    if origin in (typing.Union, getattr(__import__("types"), "UnionType")):
        return " | ".join(_type_name(a) for a in args)
    if origin in (list, tuple):
        return f"{origin.__name__}[{', '.join('...' if a is Ellipsis else _type_name(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def _default(value: Any) -> str:
    if value is ...:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _cell(text: str) -> str:
    """One markdown table cell: one line, ``|`` escaped, reST roles and double backticks as
    plain markdown code."""
    text = re.sub(r":(?:func|class|meth|mod|data):`", "`", " ".join(str(text).split()))
    return text.replace("``", "`").replace("|", "\\|")


def _mentions(cls: type) -> dict[str, str]:
    """``name -> the first docstring sentence that names ``name`` in double backticks`` (task
    parameter classes document their keys in prose, not in an Attributes section)."""
    text = " ".join((cls.__doc__ or "").split())
    sentences = re.split(r"(?<=[.;])\s+(?=[A-Z(`])", text)
    out: dict[str, str] = {}
    for f in dataclasses.fields(cls):
        hit = next((s for s in sentences if f"``{f.name}``" in s or f"``{f.name} " in s or f"``{f.name}=" in s), None)
        if hit is not None:
            out[f.name] = hit.replace("``", "`")
    return out


def _dataclass_rows(cls: type, *, skip: tuple[str, ...] = (), extra: dict[str, str] | None = None) -> list[str]:
    hints = typing.get_type_hints(cls)
    meanings = {**_mentions(cls), **(extra or {}), **_attributes(cls)}
    rows = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else ...)
        meaning = meanings.get(f.name) or f"see `{cls.__module__.rsplit('.', 1)[0]}.{cls.__name__}`"
        rows.append(f"| `{f.name}` | {_cell(_type_name(hints.get(f.name, Any)))} | {_default(default)} | {_cell(meaning)} |")
    return rows


def _header() -> list[str]:
    return ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]


def _bound(info: Any) -> str:
    """``" (>= 0, < 1)"`` from a pydantic field's metadata (the Annotated Field constraints)."""
    marks = []
    for item in info.metadata:
        for attr, sign in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            value = getattr(item, attr, None)
            if value is not None:
                marks.append(f"{sign} {value:g}" if isinstance(value, float) else f"{sign} {value}")
    return f" ({', '.join(marks)})" if marks else ""


def _model_rows(model: Any, meanings: dict[str, str]) -> list[str]:
    rows = []
    for key, info in model.model_fields.items():
        meaning = meanings.get(key) or _attributes(model).get(key, "")
        rows.append(f"| `{info.alias or key}` | {_cell(_type_name(info.annotation) + _bound(info))} | "
                    f"{_default(info.default)} | {_cell(meaning)} |")
    return rows


def reference() -> str:
    """The study config reference: every key of every section, with type, default and meaning,
    read from the schema (the top-level pydantic model and its sub-models), ArchSpec,
    TrainSettings and the task parameter dataclasses."""
    from pydantic import BaseModel

    from genlab.models import ArchSpec
    from genlab.settings import TrainSettings
    from genlab.study import StudyFile
    from genlab.tasks import TASKS

    sub_models = {}
    lines = ["### Top level", "", *_header()]
    for key, info in StudyFile.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sub_models[key] = annotation
            doc = " ".join((annotation.__doc__ or "").split("\n\n")[0].split())
            lines.append(f"| `[{key}]` | table | {{}} | {_cell(doc)} |")
        elif key in _TOP:
            kind, default, meaning = _TOP[key]
            lines.append(f"| `{key}` | {kind} | {default} | {_cell(meaning)} |")
        elif f"[{key}]" in _TOP:
            kind, default, meaning = _TOP[f"[{key}]"]
            lines.append(f"| `[{key}]` | {kind} | {default} | {_cell(meaning)} |")
        else:
            lines.append(f"| `{key}` | {_cell(_type_name(annotation))} | {_default(info.default)} | |")
    lines += ["", "### `[model]`", "", *_header(), *_dataclass_rows(ArchSpec)]
    lines.append(f"| `width` | int (>= 1) | required | {_cell(_MODEL_EXTRA['width'])} |")
    lines.append(f"| `alpha` | float (> 0) \\| None | unset | {_cell(_MODEL_EXTRA['alpha'])} |")
    lines += ["", "### `[train]`", "", *_header(), *_dataclass_rows(TrainSettings)]
    lines += ["", "### `[task]`", "",
              "Every task takes `name` (required) and `seed` (int, default 0: "
              f"{_TASK_COMMON['seed']}), then its own parameters:", ""]
    for name, cls in TASKS.items():
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        lines += [f"#### `{name}`", "", _cell(summary), "", *_header(),
                  *_dataclass_rows(cls, skip=("name", "seed"), extra=_TASK_COMMON), ""]
    for key, model in sub_models.items():
        lines += [f"### `[{key}]`", "", *_header(), *_model_rows(model, _REGIME if key == "regime" else {}), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def studies(folder: str | Path = "studies") -> str:
    """The shipped studies: file, number of cells, hypothesis (the description)."""
    from genlab.study import StudyConfigError, load

    lines = ["| study | cells | hypothesis |", "| --- | ---: | --- |"]
    for path in sorted(Path(folder).glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            if "parallel" in data:  # a `genlab train-parallel` config: one run per (method, workers)
                from genlab.parallel import parse_config

                n_cells = str(len(parse_config(data)["runs"]))
                description = data["description"]
            else:
                n_cells = str(len(load(path).cells))
                description = data["description"]
        except (StudyConfigError, KeyError, tomllib.TOMLDecodeError, ValueError) as exc:
            n_cells, description = "?", f"(invalid: {str(exc).splitlines()[0]})"
        lines.append(f"| `{path.as_posix()}` | {n_cells} | {_cell(description)} |")
    return "\n".join(lines) + "\n"


def quantities() -> str:
    """Every registered quantity: topic, whether the theory predicts it, the hook it needs."""
    from genlab.study import QUANTITIES

    lines = ["| quantity | topic | theory side | training hook |", "| --- | --- | --- | --- |"]
    for name, spec in QUANTITIES.items():
        predicted = f"`genlab.theory.{spec.topic}.{name}`" if spec.has_theory(name) else "none"
        lines.append(f"| `{name}` | {spec.topic} | {predicted} | {spec.hook or ''} |")
    return "\n".join(lines) + "\n"


def generate(section: str, *, studies_dir: str | Path = "studies") -> str:
    """The current text of one generated section."""
    if section == "reference":
        return reference()
    if section == "studies":
        return studies(studies_dir)
    if section == "quantities":
        return quantities()
    raise ValueError(f"section must be one of {', '.join(SECTIONS)}; got {section!r}")


def documentation_files(root: str | Path = ".") -> list[Path]:
    """The documentation of the repository at ``root``: README.md, then docs/*.md sorted."""
    root = Path(root)
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def blocks(text: str) -> dict[str, str]:
    """The generated blocks found in ``text`` (between the markers), by section."""
    out = {}
    for section in SECTIONS:
        begin, end = _BEGIN.format(section), _END.format(section)
        if begin in text and end in text:
            out[section] = text.split(begin, 1)[1].split(end, 1)[0].strip("\n") + "\n"
    return out


def update(text: str, *, studies_dir: str | Path = "studies") -> str:
    """``text`` with every marked block replaced by its generated content."""
    for section in blocks(text):
        begin, end = _BEGIN.format(section), _END.format(section)
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1]
        text = f"{head}{begin}\n{generate(section, studies_dir=studies_dir)}{end}{tail}"
    return text


def stale_blocks(text: str, *, studies_dir: str | Path = "studies") -> list[str]:
    """The sections of ``text`` whose marked block differs from what the code generates now."""
    new = blocks(update(text, studies_dir=studies_dir))
    return [section for section, block in blocks(text).items() if block != new[section]]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genlab.docs", description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", metavar="FILE", nargs="*",
                        help="replace the generated blocks of each FILE in place (default: README.md and docs/*.md)")
    action.add_argument("--check", metavar="FILE", nargs="*",
                        help="exit 1 if a generated block of a FILE is out of date (default: README.md and docs/*.md)")
    parser.add_argument("--section", choices=SECTIONS, help="print only this section")
    parser.add_argument("--studies-dir", default="studies", help="folder of study configs (default studies)")
    args = parser.parse_args(argv)
    if args.write is None and args.check is None:
        for section in [args.section] if args.section else SECTIONS:
            sys.stdout.write(generate(section, studies_dir=args.studies_dir) + "\n")
        return 0
    paths = [Path(p) for p in (args.write if args.write is not None else args.check)] or documentation_files()
    status = 0
    for path in paths:
        text = path.read_text(encoding="utf-8")
        if args.check is not None:
            stale = stale_blocks(text, studies_dir=args.studies_dir)
            if stale:
                print(f"{path}: generated block(s) out of date: {', '.join(stale)}; run python -m genlab.docs --write {path}",
                      file=sys.stderr)
                status = 1
        else:
            new = update(text, studies_dir=args.studies_dir)
            if new != text:
                path.write_text(new, encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
