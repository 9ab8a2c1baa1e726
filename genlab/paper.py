"""Paper figures and tables rebuilt from studies, each file with a provenance sidecar.

``paper/paper.toml`` declares the outputs; every ``[[figure]]`` or ``[[table]]`` entry names

- ``name``: the output name (``build/figures/<name>.pdf|png`` or ``build/tables/<name>.tex|md``),
- ``study``: the study config, relative to the paper folder's parent (the repository root),
- ``recipe``: a function of the recipes module (``paper/recipes.py``) taking a
  :class:`~genlab.study.Results` and returning a matplotlib Figure (figures) or a
  :class:`PaperTable` (tables),
- ``caption`` (optional) and ``draft`` (optional): ``draft.grid`` replaces grid lists for a
  quick ``--draft`` build (``{ width = [64, 256], seed = [0] }``), ``draft.train`` / ``draft.task``
  / ``draft.model`` override single keys.

:func:`build` runs each study once (the study runner reuses every cell already computed, by the
content hash of its resolved config, in ``build/runs/<study>``, ``build/runs/<study>-draft`` and
the study's default run directory ``runs/<name>``), calls the recipes and writes the files. A file is written only when
its bytes differ from what is on disk (temp file + rename), so a second build with nothing changed
writes nothing. The sidecar ``<name>.provenance.json`` records the study hash (of the resolved cell
configs), a hash of the results, the draft overrides, package versions and the git commit at which
the files were last written.

Adding a figure for a new study = one recipe function + one ``[[figure]]`` entry.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import io
import json
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from genlab.study import atomic_write, cell_path, read_finished

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from genlab.study import Results, Study

#: Figure formats written for every figure; column width of a two-column paper, in inches.
FIGURE_FORMATS = ("pdf", "png")
COLUMN_WIDTH = 3.3
#: Quantities whose theory has a sympy closed form: quantity -> (theory topic, expression name);
#: the topic module's ``latex(name)`` prints it. Extend when a theory module gains one.
CLOSED_FORMS: dict[str, tuple[str, str]] = {
    "sharpness": ("landscape", "eos_threshold"),
    "sharpness_max": ("landscape", "eos_threshold"),
    "sharpness_late": ("landscape", "eos_threshold"),
    "sgd_stability": ("landscape", "sgd_stability_condition"),
    "nonuniformity": ("landscape", "sgd_max_nonuniformity"),
    # Expressions recipes cite by their own name, not through a quantity: solution_l1/l2 follow
    # Q_alpha for a diagonal net but min_norm for a linear model, and the sharpness threshold is
    # eos_threshold_momentum only under momentum or weight decay, so no quantity maps to these alone.
    "q_alpha": ("implicit_bias", "q_alpha"),
    "min_norm": ("implicit_bias", "min_norm"),
    "eos_threshold_momentum": ("landscape", "eos_threshold_momentum"),
}
_VOLATILE = ("git",)  # sidecar fields that alone never cause a rewrite (commit, dirty tree)


class PaperConfigError(ValueError):
    """paper.toml is invalid; ``str(error)`` is one line naming the key."""


@dataclass(frozen=True)
class PaperTable:
    """A table recipe's result.

    Attributes:
        frame: the rows to print (strings or numbers; column names as headers).
        caption: the caption (LaTeX allowed between ``$``; ``_`` outside math is escaped).
        closed_forms: ``quantity -> LaTeX`` of the theory's closed forms, appended to the caption.
    """

    frame: "pd.DataFrame"
    caption: str = ""
    closed_forms: dict[str, str] = field(default_factory=dict)


class _Draft(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    task: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)


class Entry(BaseModel):
    """One ``[[figure]]`` or ``[[table]]`` of paper.toml."""

    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    study: str
    recipe: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    caption: str = ""
    draft: _Draft = Field(default_factory=_Draft)


class _PaperFile(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    recipes: str = "recipes.py"
    figure: list[Entry] = Field(default_factory=list)
    table: list[Entry] = Field(default_factory=list)


@dataclass(frozen=True)
class Paper:
    """A validated paper.toml: its folder, the recipes module path and the entries by kind."""

    folder: Path
    recipes: Path
    figures: tuple[Entry, ...]
    tables: tuple[Entry, ...]

    @property
    def root(self) -> Path:
        """The folder study paths are relative to (the paper folder's parent)."""
        return self.folder.parent

    @property
    def build_dir(self) -> Path:
        return self.folder / "build"

    def entries(self) -> list[tuple[Literal["figure", "table"], Entry]]:
        return [("figure", e) for e in self.figures] + [("table", e) for e in self.tables]


def load_paper(path: str | Path = "paper/paper.toml") -> Paper:
    """Read and validate paper.toml: unique names, existing studies and recipes module."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PaperConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PaperConfigError(f"{path}: {str(exc).splitlines()[0]}") from None
    try:
        parsed = _PaperFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        key = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in error["loc"]).replace(".[", "[")
        raise PaperConfigError(f"{path}: {key}: {error['msg']}; got {error.get('input')!r}") from None
    folder = path.parent.resolve()
    seen: set[str] = set()
    for kind, entries in (("figure", parsed.figure), ("table", parsed.table)):
        for i, entry in enumerate(entries):
            if entry.name in seen:
                raise PaperConfigError(f"{path}: {kind}[{i}].name: duplicate output name {entry.name!r}")
            seen.add(entry.name)
            if not (folder.parent / entry.study).is_file():
                raise PaperConfigError(f"{path}: {kind}[{i}].study: no such file {entry.study!r} (relative to {folder.parent})")
    recipes = folder / parsed.recipes
    if not recipes.is_file():
        raise PaperConfigError(f"{path}: recipes: no such file {parsed.recipes!r}")
    return Paper(folder, recipes, tuple(parsed.figure), tuple(parsed.table))


def load_recipes(paper: Paper) -> ModuleType:
    """Import the recipes module from its file (it is not part of the installed package)."""
    spec = importlib.util.spec_from_file_location("genlab_paper_recipes", paper.recipes)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------
# Studies: draft overrides, cache seeding, running.


def study_data(paper: Paper, entry: Entry, *, draft: bool) -> dict[str, Any]:
    """The study config of ``entry`` as a dict, with its draft overrides applied if ``draft``."""
    from genlab.study import read_toml

    data = copy.deepcopy(read_toml(paper.root / entry.study))
    if draft:
        overrides = entry.draft
        grid = data.setdefault("grid", {})
        for key, values in overrides.grid.items():
            if key not in grid:
                raise PaperConfigError(f"{entry.name}: draft.grid.{key}: not a grid key of {entry.study} ({', '.join(grid)})")
            grid[key] = values
        for section in ("task", "model", "train"):
            data.setdefault(section, {}).update(getattr(overrides, section))
    return data


def study_hash(study: "Study") -> str:
    """sha256 (16 hex digits) of the sorted cell ids: the content hashes of the resolved cell configs."""
    return hashlib.sha256("\n".join(sorted(c.id for c in study.cells)).encode()).hexdigest()[:16]


def _seed_cache(study: "Study", run_dir: Path, sources: list[Path]) -> int:
    """Copy into ``run_dir`` every finished cell of ``study`` found in a source run directory
    (same content hash and config); return how many were copied."""
    copied = 0
    for cell in study.cells:
        if read_finished(run_dir, cell) is not None:
            continue
        for source in sources:
            if source.resolve() != run_dir.resolve() and read_finished(source, cell) is not None:
                # Atomic copies, arrays before the record (as the store writes them): an
                # interrupted copy never leaves a half-written cell behind.
                arrays = cell_path(source, cell.id).with_suffix(".npz")  # a cell's arrays, if it kept any
                if arrays.is_file():
                    atomic_write(cell_path(run_dir, cell.id).with_suffix(".npz"), arrays.read_bytes())
                atomic_write(cell_path(run_dir, cell.id), cell_path(source, cell.id).read_bytes())
                copied += 1
                break
    return copied


def run_study(paper: Paper, entry: Entry, *, draft: bool, workers: int | None = None, executor: str = "local",
              progress: bool = False, cell_fn: Callable[[dict[str, Any]], Any] | None = None) -> "Results":
    """The results of ``entry``'s study: read back when every cell is cached (nothing written),
    else computed by the study runner into ``build/runs/<name>[-draft]`` (``cell_fn``: the
    runner's cell function, default the real one; tests pass a fake)."""
    from genlab.study import Results, parse

    study = parse(study_data(paper, entry, draft=draft), source=entry.study)
    run_dir = paper.build_dir / "runs" / (study.name + ("-draft" if draft else ""))
    runs = paper.build_dir / "runs"
    _seed_cache(study, run_dir, [runs / study.name, runs / f"{study.name}-draft", paper.root / study.default_run_dir()])
    records = {}
    for cell in study.cells:
        record = read_finished(run_dir, cell)
        if record is None:
            return study.run(out=run_dir, workers=workers, executor=executor, cell_fn=cell_fn, progress=progress)
        records[cell.id] = record
    return Results(study, run_dir, records, cached=set(records))


# ---------------------------------------------------------------------------------------------
# Rendering and writing.


def _figure_bytes(figure: "Figure", fmt: str) -> bytes:
    """The figure encoded as ``fmt`` with no time stamps, so that equal figures give equal bytes."""
    buffer = io.BytesIO()
    metadata: dict[str, Any] = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
    figure.savefig(buffer, format=fmt, dpi=300, metadata=metadata)
    return buffer.getvalue()


_LATEX_TEXT = {"&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "±": r"$\pm$", "≤": r"$\le$", "≥": r"$\ge$",
               "~": r"\textasciitilde{}"}


def _latex_text(text: Any) -> str:
    """Escape plain text for LaTeX, leaving ``$...$`` math untouched."""
    parts = str(text).split("$")
    return "$".join(p if i % 2 else "".join(_LATEX_TEXT.get(ch, ch) for ch in p) for i, p in enumerate(parts))


def closed_form_caption(closed_forms: Mapping[str, str]) -> str:
    """"Closed forms: sharpness_late $= \\frac{2}{\\eta}$; ..." grouped by equal expression."""
    grouped: dict[str, list[str]] = {}
    for quantity, expr in closed_forms.items():
        grouped.setdefault(expr, []).append(quantity)
    return "; ".join(f"{', '.join(qs)} $= {expr}$" for expr, qs in grouped.items())


def closed_forms(quantities: list[str]) -> dict[str, str]:
    """LaTeX of the theory's closed form for each quantity that has one (see CLOSED_FORMS)."""
    out = {}
    for quantity in quantities:
        if quantity in CLOSED_FORMS:
            topic, name = CLOSED_FORMS[quantity]
            out[quantity] = importlib.import_module(f"genlab.theory.{topic}").latex(name)
    return out


def table_latex(table: PaperTable, *, name: str) -> str:
    """A ``table`` float (booktabs) with the caption, the closed forms and ``\\label{tab:<name>}``."""
    frame = table.frame
    aligns = "".join("r" if frame[c].map(lambda v: isinstance(v, (int, float))).all() or c in ("theory", "empirical", "gap")
                     else "l" for c in frame.columns)
    caption = table.caption.strip()
    if table.closed_forms:
        caption += (" " if caption else "") + "Closed forms: " + closed_form_caption(table.closed_forms) + "."
    lines = [r"\begin{table}[t]", r"\centering", r"\small", r"\caption{" + _latex_text(caption) + "}",
             r"\label{tab:" + name + "}", r"\begin{tabular}{" + aligns + "}", r"\toprule",
             " & ".join(_latex_text(c) for c in frame.columns) + r" \\", r"\midrule"]
    for row in frame.itertuples(index=False, name=None):
        lines.append(" & ".join(_latex_text(_fmt(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def table_markdown(table: PaperTable, *, name: str) -> str:
    frame = table.frame
    lines = [f"**{name}**: {table.caption.strip()}", ""]
    if table.closed_forms:
        lines[0] += " Closed forms: " + closed_form_caption(table.closed_forms) + "."
    lines.append("| " + " | ".join(map(str, frame.columns)) + " |")
    lines.append("|" + "---|" * len(frame.columns))
    for row in frame.itertuples(index=False, name=None):
        lines.append("| " + " | ".join(_fmt(v).replace("|", r"\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _results_hash(results: "Results") -> str:
    rows = results.rows
    return hashlib.sha256(rows.to_csv(index=False, lineterminator="\n").encode()).hexdigest()[:16]


def provenance(results: "Results", entry: Entry, *, kind: str, draft: bool, files: dict[str, bytes]) -> dict[str, Any]:
    """The sidecar of one output: what it was made from and with."""
    import importlib.metadata as md

    from genlab import __version__
    from genlab.study import PACKAGES, git_state

    versions = {}
    for package in (*PACKAGES, "matplotlib", "sympy", "pandas"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    return {
        "name": entry.name,
        "kind": kind,
        "recipe": entry.recipe,
        "study": entry.study,
        "study_name": results.study.name,
        "study_hash": study_hash(results.study),
        "results_hash": _results_hash(results),
        "cells": len(results.study.cells),
        "failed_cells": len(results.failed),
        "draft": entry.draft.model_dump() if draft and entry.draft != _Draft() else None,  # None: the full study
        "run_dir": str(results.run_dir),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        "genlab": __version__,
        "versions": versions,
        "git": git_state(),
    }


def _write_if_changed(path: Path, data: bytes) -> bool:
    try:
        if path.read_bytes() == data:
            return False
    except OSError:
        pass
    atomic_write(path, data)
    return True


def _write_sidecar(path: Path, sidecar: dict[str, Any], *, outputs_changed: bool) -> bool:
    """Write the sidecar unless only volatile fields (the git commit) differ and no output changed."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    if not outputs_changed and isinstance(old, dict):
        strip = lambda d: {k: v for k, v in d.items() if k not in _VOLATILE}  # noqa: E731
        if strip(old) == strip(sidecar):
            return False
    return _write_if_changed(path, (json.dumps(sidecar, indent=1, sort_keys=True) + "\n").encode())


@dataclass
class Written:
    """What one output did: its files and whether each was rewritten."""

    name: str
    kind: str
    files: dict[str, bool]  # path -> written (False: unchanged)


def build(paper: Paper, *, draft: bool = False, only: list[str] | None = None, workers: int | None = None,
          executor: str = "local", progress: bool = False, log: Callable[[str], None] | None = None,
          cell_fn: Callable[[dict[str, Any]], Any] | None = None) -> list[Written]:
    """Build the figures and tables of ``paper`` (those named in ``only``, if given); ``log``
    receives one line per study and per file (written or unchanged)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    entries = paper.entries()
    names = [e.name for _, e in entries]
    for name in only or []:
        if name not in names:
            raise PaperConfigError(f"--only: no figure or table named {name!r}; names: {', '.join(names)}")
    recipes = load_recipes(paper)
    cache: dict[tuple[str, str], "Results"] = {}
    out: list[Written] = []
    for kind, entry in entries:
        if only and entry.name not in only:
            continue
        recipe = getattr(recipes, entry.recipe, None)
        if not callable(recipe):
            raise PaperConfigError(f"{entry.name}: recipe: {entry.recipe!r} is not a function of {paper.recipes.name}")
        key = (entry.study, json.dumps(entry.draft.model_dump(), sort_keys=True) if draft else "")
        if key not in cache:
            if log:
                log(f"study {entry.study}{' (draft)' if draft else ''}")
            cache[key] = run_study(paper, entry, draft=draft, workers=workers, executor=executor, progress=progress,
                                   cell_fn=cell_fn)
        results = cache[key]
        made = recipe(results)
        files: dict[str, bytes] = {}
        if kind == "figure":
            if draft:
                made.text(0.99, 0.01, "draft", ha="right", va="bottom", fontsize=6, color="0.6")
            folder = paper.build_dir / "figures"
            for fmt in FIGURE_FORMATS:
                files[f"{entry.name}.{fmt}"] = _figure_bytes(made, fmt)
            plt.close(made)
        else:
            if not isinstance(made, PaperTable):
                raise TypeError(f"{entry.name}: recipe {entry.recipe} must return a PaperTable; got {type(made).__name__}")
            folder = paper.build_dir / "tables"
            if not made.caption and entry.caption:
                made = PaperTable(made.frame, entry.caption, made.closed_forms)
            files[f"{entry.name}.tex"] = table_latex(made, name=entry.name).encode()
            files[f"{entry.name}.md"] = table_markdown(made, name=entry.name).encode()
        status = {str(folder / n): _write_if_changed(folder / n, data) for n, data in files.items()}
        sidecar = provenance(results, entry, kind=kind, draft=draft, files=files)
        side = folder / f"{entry.name}.provenance.json"
        status[str(side)] = _write_sidecar(side, sidecar, outputs_changed=any(status.values()))
        out.append(Written(entry.name, kind, status))
        if log:
            for path, wrote in status.items():
                log(f"  {'wrote    ' if wrote else 'unchanged'} {path}")
    return out
