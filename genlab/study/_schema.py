"""Study config schema: a TOML file validated into a :class:`~genlab.study.Study` of grid cells.

The rules live in one place each. The top level, ``[table]`` and ``[regime]`` are pydantic
models; the ``[model]``, ``[train]`` and ``[task]`` sections are pydantic models generated from
the fields of :class:`~genlab.models.ArchSpec` (plus ``width`` and ``alpha``),
:class:`~genlab.settings.TrainSettings` and the task's parameter dataclass, which give
the types; the dataclasses themselves, constructed for the base config and for every grid cell,
give the value rules. Every failure, whichever layer finds it, becomes one line
``"<file>: <dotted key>: <message>"`` through :func:`_describe` and :class:`StudyConfigError`.

Grid keys are ``"section.field"`` or a bare field name, which resolves to the unique section
that has it (``seed`` alone means ``train.seed``: network init and batch order; the data seed
is ``task.seed``). Cells are the Cartesian product of the grid lists in the order the keys are
written, the last key varying fastest.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import itertools
import json
import math
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model, field_validator
from pydantic_core import PydanticCustomError

from genlab.study._grid import Cell, cell_id, column_names

#: Largest number of cells a grid may expand to.
MAX_CELLS = 10_000
SECTIONS = ("task", "model", "train")
_KEY_ORDER = ("model", "train", "task")  # how grid keys are listed and searched
TOP_KEYS = ("name", "description", "quantities", "task", "model", "train", "grid", "table", "regime", "resources")
_CUSTOM = "genlab_"  # prefix of our own pydantic error types: their message is complete
_CONFIG = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)
_FIELD_PREFIX = re.compile(r"^(?:ArchSpec|TrainSettings|train|task|model)\.(\w+)\s+(.*)$", re.DOTALL)


class StudyConfigError(ValueError):
    """A study config is invalid. ``str(error)`` is one line: ``"<file>: <key>: <message>"``.

    Attributes:
        source: the file (or the label given to :func:`parse`).
        key: the dotted config key, e.g. ``"model.width"`` or ``"grid.lr[1]"``; None for
            file-level problems (missing file, malformed TOML).
        message: what was expected, and the value that was found.
    """

    def __init__(self, source: str, key: str | None, message: str) -> None:
        self.source, self.key, self.message = source, key, message
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")


class _Invalid(Exception):
    """Internal: a problem at ``key``; turned into a StudyConfigError by :func:`parse`."""

    def __init__(self, key: str | None, message: str) -> None:
        super().__init__(key, message)
        self.key, self.message = key, message


# ---------------------------------------------------------------------------------------------
# One place that turns an error into a message.

_EXPECTED = {
    "int_type": "must be an int",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "finite_number": "must be a finite number",
    "missing": "is required",
    "too_short": "must not be empty",
    "string_too_short": "must not be empty",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "string_pattern_mismatch": "must match {pattern}",
    "literal_error": "must be one of {expected}",
    "none_required": "must be left out",
}


def _dotted(loc: tuple[Any, ...]) -> str:
    key = ""
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _describe(error: Mapping[str, Any]) -> str:
    """The message of one pydantic error: what was expected, then the value found."""
    kind = error["type"]
    if kind.startswith(_CUSTOM):
        return error["msg"]
    template = _EXPECTED.get(kind)
    if template is None:
        return f"{error['msg']}; got {error.get('input')!r}"
    ctx = {k: (f"{v:g}" if isinstance(v, float) else v) for k, v in (error.get("ctx") or {}).items()}
    text = template.format(**ctx)
    return text if kind == "missing" else f"{text}; got {error['input']!r}"


def _unknown_key(key: str, name: str, valid: tuple[str, ...], *, what: str = "key") -> _Invalid:
    hint = difflib.get_close_matches(name, valid, n=1)
    did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
    return _Invalid(key, f"unknown {what}{did_you_mean}; valid {what}s: {', '.join(valid)}")


def _from_validation(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> _Invalid:
    """The first error of ``exc`` (raised by ``model``) as an _Invalid at its dotted key; an
    unknown key goes first, since a typo also makes the intended key look missing."""
    errors = exc.errors(include_url=False)
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(error["loc"])
    key = _dotted(((prefix,) if prefix else ()) + loc)
    if error["type"] == "extra_forbidden":
        parent: Any = model
        for part in loc[:-1]:
            field = _field_by_alias(parent, part)
            parent = field.annotation if field is not None else None
        valid = _aliases(parent) if isinstance(parent, type) and issubclass(parent, BaseModel) else ()
        return _unknown_key(key, str(loc[-1]), valid)
    return _Invalid(key, _describe(error))


def _aliases(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(field.alias or name for name, field in model.model_fields.items())


def _field_by_alias(model: Any, alias: Any) -> Any:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    for name, field in model.model_fields.items():
        if (field.alias or name) == alias:
            return field
    return None


def _from_value_error(section: str, exc: Exception) -> _Invalid:
    """A ValueError of ArchSpec / TrainSettings / a task's params, e.g. "ArchSpec.depth must be
    ...", as an _Invalid at ``section.depth`` with the message "must be ..."."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    match = _FIELD_PREFIX.match(text)
    if match:
        return _Invalid(f"{section}.{match.group(1)}", match.group(2))
    return _Invalid(section, text)


# ---------------------------------------------------------------------------------------------
# Top level, [table], [regime].


def _custom(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(_CUSTOM + code, message.replace("{", "{{").replace("}", "}}"))


class TableSettings(BaseModel):
    """``[table]``: how the side-by-side table is laid out (not part of any cell's hash).

    Attributes:
        rows: grid keys shown as row labels (default: every swept key except ``aggregate``).
        quantities: the quantities shown (default: all of the study's).
        aggregate: grid key averaged over as "mean ± std" (default ``"seed"`` when
            ``train.seed`` is swept, else ``"none"``).
    """

    model_config = _CONFIG
    rows: list[str] | None = None
    quantities: Annotated[list[str], Field(min_length=1)] | None = None
    aggregate: str | None = None


class RegimeSettings(BaseModel):
    """``[regime]``: thresholds of the per-cell verdict (see :func:`genlab.study.regime_verdict`)."""

    model_config = _CONFIG
    drift_threshold: Annotated[float, Field(gt=0)] = 0.1
    error_tolerance: Annotated[float, Field(ge=0, lt=1)] = 0.1


class ResourceSettings(BaseModel):
    """``[resources]``: what one cell needs and how often a cell whose worker died is retried
    (not part of any cell's hash: moving a study to a cluster recomputes nothing).

    Attributes:
        cpus: CPU cores (torch/OpenMP threads) per cell; default: the cores shared evenly
            between the local workers, 1 per Ray task.
        gpus: GPUs per cell for the Ray executor (fractions share a GPU); default 0.
        max_retries: times a cell is run again after its worker process died; default 2.
    """

    model_config = _CONFIG
    cpus: Annotated[int, Field(ge=1, le=1024)] | None = None
    gpus: Annotated[float, Field(ge=0, le=64)] = 0.0
    max_retries: Annotated[int, Field(ge=0, le=100)] = 2


class StudyFile(BaseModel):
    """The top level of a study config file, before its sections are resolved into cells."""

    model_config = _CONFIG
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]
    description: str
    quantities: Annotated[list[str], Field(min_length=1)]
    task: dict[str, Any]
    model: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    table: TableSettings = Field(default_factory=TableSettings)
    regime: RegimeSettings = Field(default_factory=RegimeSettings)
    resources: ResourceSettings = Field(default_factory=ResourceSettings)

    @field_validator("description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise _custom("blank", "must not be empty: state the hypothesis the study tests")
        return value


# ---------------------------------------------------------------------------------------------
# [model], [train], [task]: pydantic models generated from the dataclasses.


def _quantity_names() -> tuple[str, ...]:
    from genlab.study._registry import QUANTITY_NAMES

    return QUANTITY_NAMES


def _task_registry() -> Mapping[str, type]:
    from genlab.tasks import TASKS

    return TASKS


def _arch_spec() -> type:
    from genlab.models import ArchSpec

    return ArchSpec


def _train_settings() -> type:
    from genlab.settings import TrainSettings

    return TrainSettings


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _typed(tp: Any) -> Any:
    """The pydantic annotation for a dataclass field type: strict scalars (no "1" -> 1, no
    true -> 1; ints are accepted for floats), TOML arrays accepted for tuples."""
    if tp in (int, float, str, bool, type(None)):
        return tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Annotated:
        return _typed(args[0])
    if origin in (Union, types.UnionType):
        return Union[tuple(_typed(a) for a in args)]  # noqa: UP007 - built from a tuple
    if origin is Literal:
        return tp
    if origin is tuple:
        inner = tuple(a if a is Ellipsis else _typed(a) for a in args)
        return Annotated[tuple[inner] if inner else tuple, BeforeValidator(_as_tuple)]
    if origin is list:
        return list[_typed(args[0])] if args else list
    return Any


def _dataclass_fields(cls: type) -> list[tuple[str, Any, Any]]:
    """(name, annotation, default) of the init fields of ``cls``; default ``...`` if required."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # unresolvable annotations: leave the types to the dataclass
        hints = {}
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = ...
        out.append((f.name, _typed(hints.get(f.name, Any)), default))
    return out


def _model_from_fields(title: str, spec: list[tuple[str, Any, Any]]) -> type[BaseModel]:
    # Internal names are prefixed so that no field shadows a BaseModel attribute; the aliases
    # are the config keys.
    definitions = {f"f_{name}": (Annotated[tp, Field(alias=name)], default) for name, tp, default in spec}
    return create_model(title, __config__=_CONFIG, **definitions)


@functools.lru_cache(maxsize=None)
def _section_spec(section: str, task_cls: type | None) -> list[tuple[str, Any, Any]]:
    if section == "model":
        return _dataclass_fields(_arch_spec()) + [
            ("width", Annotated[int, Field(ge=1)], ...),
            ("alpha", Annotated[float, Field(gt=0)] | None, None),
        ]
    if section == "train":
        return _dataclass_fields(_train_settings())
    assert task_cls is not None
    params = [f for f in _dataclass_fields(task_cls) if f[0] not in ("name", "seed")]
    return [("name", str, ...), ("seed", int, 0), *params]


@functools.lru_cache(maxsize=None)
def _section_model(section: str, task_cls: type | None) -> type[BaseModel]:
    title = f"task:{task_cls.__name__}" if task_cls is not None else section
    return _model_from_fields(title, _section_spec(section, task_cls))


def section_keys(section: str, task_cls: type | None) -> tuple[str, ...]:
    """The keys a section accepts, in declaration order."""
    return tuple(name for name, _, _ in _section_spec(section, task_cls))


def section_defaults(section: str, task_cls: type | None) -> dict[str, Any]:
    """The declared defaults of a section's optional keys."""
    return {name: default for name, _, default in _section_spec(section, task_cls) if default is not ...}


def _resolve_section(section: str, raw: dict[str, Any], task_cls: type | None) -> dict[str, Any]:
    """Validate one section and return it with every default filled in (canonical values)."""
    model = _section_model(section, task_cls)
    try:
        values = model.model_validate(raw).model_dump(by_alias=True)
    except ValidationError as exc:
        raise _from_validation(exc, model, section) from None
    try:
        if section == "model":
            width, alpha = values.pop("width"), values.pop("alpha")
            spec = _arch_spec()(**values)
            return {**dataclasses.asdict(spec), "width": width, "alpha": alpha}
        if section == "train":
            return dataclasses.asdict(_train_settings()(**values))
        name, seed = values.pop("name"), values.pop("seed")
        return {"name": name, **dataclasses.asdict(task_cls(**values)), "seed": seed}
    except (ValueError, TypeError) as exc:
        raise _from_value_error(section, exc) from None


# ---------------------------------------------------------------------------------------------
# Grid keys.


def _resolve_key(key: str, where: str, fields: dict[str, tuple[str, ...]]) -> str:
    """``key`` (bare or dotted) as ``"section.field"``; ``where`` is the config key reported."""
    sweepable = {s: tuple(k for k in fields[s] if (s, k) != ("task", "name")) for s in _KEY_ORDER}
    if "." in key:
        section, _, name = key.partition(".")
        if section not in fields:
            raise _Invalid(where, f"unknown section {section!r}; grid keys are section.field with section one of "
                                  f"{', '.join(_KEY_ORDER)}, or a bare field name")
        if key == "task.name":
            raise _Invalid(where, "the task cannot be swept: write one study per task")
        if name not in fields[section]:
            elsewhere = [s for s in _KEY_ORDER if name in sweepable[s]]
            if elsewhere:
                raise _Invalid(where, f"unknown key; {name!r} is a key of {' and '.join(elsewhere)}: "
                                      f"write {' or '.join(f'{s}.{name}' for s in elsewhere)}")
            raise _unknown_key(where, name, fields[section])
        return key
    if key == "seed":
        return "train.seed"
    matches = [s for s in _KEY_ORDER if key in sweepable[s]]
    if len(matches) > 1:
        raise _Invalid(where, f"ambiguous key {key!r}: write one of {', '.join(f'{s}.{key}' for s in matches)}")
    if not matches:
        every = tuple(k for s in _KEY_ORDER for k in sweepable[s])
        listed = "; ".join(f"{s}.{{{', '.join(sweepable[s])}}}" for s in _KEY_ORDER)
        hint = difflib.get_close_matches(key, every, n=1)
        did_you_mean = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise _Invalid(where, f"unknown key{did_you_mean}; valid keys: {listed}")
    return f"{matches[0]}.{key}"


# ---------------------------------------------------------------------------------------------
# The study.


def _check_finite(value: Any, key: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _Invalid(key or None, f"must be a finite number; got {value!r}")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, f"{key}.{k}" if key else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, f"{key}[{i}]")


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML of ``path``; a StudyConfigError (one line) if it cannot be read."""
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise StudyConfigError(source, None, "no such file") from None
    except IsADirectoryError:
        raise StudyConfigError(source, None, "is a directory; expected a study .toml file") from None
    except OSError as exc:
        raise StudyConfigError(source, None, f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise StudyConfigError(source, None, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise StudyConfigError(source, None, f"invalid TOML: {exc}") from None


def load(path: str | Path) -> "Study":
    """Read and validate the study config at ``path``; raises StudyConfigError (one line)."""
    return parse(read_toml(path), source=str(path))


def parse(data: Mapping[str, Any], *, source: str = "<study>") -> "Study":
    """Validate a study config given as a dict (the parsed TOML); see :func:`load`."""
    from genlab.study._study import Study

    try:
        return Study(source=source, **_validate(dict(data)))
    except _Invalid as exc:
        raise StudyConfigError(source, exc.key, exc.message) from None


def _validate(data: dict[str, Any]) -> dict[str, Any]:
    _check_finite(data, "")
    try:
        top = StudyFile.model_validate(data)
    except ValidationError as exc:
        raise _from_validation(exc, StudyFile) from None

    known = _quantity_names()
    for i, quantity in enumerate(top.quantities):
        if quantity not in known:
            raise _unknown_key(f"quantities[{i}]", quantity, known, what="quantity name")
        if quantity in top.quantities[:i]:
            raise _Invalid(f"quantities[{i}]", f"duplicate quantity {quantity!r}")

    tasks = _task_registry()
    task_name = top.task.get("name")
    if task_name is None:
        raise _Invalid("task.name", f"is required; valid tasks: {', '.join(tasks)}")
    if not isinstance(task_name, str):
        raise _Invalid("task.name", f"must be a string; got {task_name!r}")
    if task_name not in tasks:
        raise _unknown_key("task.name", task_name, tuple(tasks), what="task")
    task_cls = tasks[task_name]
    fields = {s: section_keys(s, task_cls if s == "task" else None) for s in SECTIONS}

    # Grid keys: resolved, distinct, not too many cells.
    swept: dict[str, list[Any]] = {}
    written: dict[str, str] = {}
    for key, values in top.grid.items():
        dotted = _resolve_key(key, f"grid.{key}", fields)
        if dotted in swept:
            raise _Invalid(f"grid.{key}", f"sweeps the same key as grid.{written[dotted]} ({dotted})")
        swept[dotted], written[dotted] = values, key
    n_cells = math.prod(len(v) for v in swept.values())
    if n_cells > MAX_CELLS:
        sizes = " x ".join(f"{written[k]}[{len(v)}]" for k, v in swept.items())
        raise _Invalid("grid", f"expands to {n_cells} cells ({sizes}); the limit is {MAX_CELLS}")

    table = _resolve_table(top, swept, written, fields)
    regime = top.regime.model_dump()
    base = {"task": top.task, "model": top.model, "train": top.train}
    for section in SECTIONS:  # the base config on its own, a swept key it lacks from the grid
        section_cls = task_cls if section == "task" else None
        raw = dict(base[section])
        filled = set()
        for name, _, default in _section_spec(section, section_cls):
            # Not only required keys: a rule across keys (batch_size needs optimizer "sgd") must
            # see the swept value, not the default, when config.toml is read back without it.
            if name not in raw and f"{section}.{name}" in swept:
                raw[name] = swept[f"{section}.{name}"][0]
                filled.add(f"{section}.{name}")
        try:
            _resolve_section(section, raw, section_cls)
        except _Invalid as exc:  # a bad first grid value: name the grid entry, not the section key
            if exc.key in filled:
                raise _Invalid(f"grid.{written[exc.key]}[0]", exc.message) from None
            raise
    cells = _expand(base, swept, written, task_cls, list(top.quantities))

    return {
        "name": top.name,
        "description": top.description,
        "quantities": tuple(top.quantities),
        "task_name": task_name,
        "base": {s: _base_section(s, base[s], swept, task_cls) for s in SECTIONS},
        "grid": {k: list(v) for k, v in swept.items()},
        "table_rows": table["rows"],
        "table_quantities": table["quantities"],
        "aggregate": table["aggregate"],
        "regime": regime,
        "resources": top.resources.model_dump(),
        "cells": tuple(cells),
    }


def _base_section(section: str, raw: dict[str, Any], swept: dict[str, list[Any]], task_cls: type) -> dict[str, Any]:
    """The base section as written, with the declared defaults of absent keys filled in, minus
    the swept keys (the grid gives those): what config.toml of a run directory records."""
    defaults = section_defaults(section, task_cls if section == "task" else None)
    merged = {**defaults, **raw}
    return {k: v for k, v in merged.items() if f"{section}.{k}" not in swept}


def _resolve_table(top: StudyFile, swept: dict[str, list[Any]], written: dict[str, str],
                   fields: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    settings = top.table

    def swept_key(key: str, where: str) -> str:
        dotted = _resolve_key(key, where, fields)
        if dotted not in swept:
            listed = ", ".join(written.values()) or "none"
            raise _Invalid(where, f"{key!r} is not swept; swept keys: {listed}")
        return dotted

    if settings.aggregate is None:
        aggregate = "train.seed" if "train.seed" in swept else None
    elif settings.aggregate == "none":
        aggregate = None
    else:
        aggregate = swept_key(settings.aggregate, "table.aggregate")

    if settings.rows is None:
        rows = [k for k in swept if k != aggregate]
    else:
        rows = []
        for i, key in enumerate(settings.rows):
            dotted = swept_key(key, f"table.rows[{i}]")
            if dotted == aggregate:
                raise _Invalid(f"table.rows[{i}]", f"{key!r} is the aggregated key (table.aggregate)")
            if dotted in rows:
                raise _Invalid(f"table.rows[{i}]", f"duplicate row key {key!r}")
            rows.append(dotted)
        missing = [written[k] for k in swept if k != aggregate and k not in rows]
        if missing:
            raise _Invalid("table.rows", f"must list every swept key except the aggregated one; missing: {', '.join(missing)}")

    quantities = list(top.quantities)
    if settings.quantities is not None:
        for i, quantity in enumerate(settings.quantities):
            if quantity not in top.quantities:
                raise _Invalid(f"table.quantities[{i}]", f"{quantity!r} is not one of the study's quantities: {', '.join(top.quantities)}")
        quantities = list(dict.fromkeys(settings.quantities))
    return {"rows": tuple(rows), "quantities": tuple(quantities), "aggregate": aggregate}


def _expand(base: dict[str, dict[str, Any]], swept: dict[str, list[Any]], written: dict[str, str],
            task_cls: type, quantities: list[str]) -> list[Cell]:
    """Every grid cell, validated, with its resolved config and id (grid order). The verdict
    thresholds ([regime]) are not part of a cell: the verdict is recomputed from the stored
    rows, so changing a threshold recomputes nothing."""
    keys = list(swept)
    names = column_names(keys)
    resolved_cache: dict[tuple[str, str], dict[str, Any]] = {}
    cells: list[Cell] = []
    seen: dict[str, int] = {}
    for index, choice in enumerate(itertools.product(*(range(len(swept[k])) for k in keys))):
        raw = {s: dict(base[s]) for s in SECTIONS}
        for key, i in zip(keys, choice):
            section, _, name = key.partition(".")
            raw[section][name] = swept[key][i]
        config: dict[str, Any] = {}
        for section in SECTIONS:
            cache_key = (section, json.dumps(raw[section], sort_keys=True, default=repr))
            if cache_key not in resolved_cache:
                try:
                    resolved_cache[cache_key] = _resolve_section(section, raw[section], task_cls if section == "task" else None)
                except _Invalid as exc:
                    raise _blame(exc, keys, choice, swept, written, names, index) from None
            config[section] = resolved_cache[cache_key]
        config["quantities"] = list(quantities)
        ident = cell_id(config)
        params = {key: _lookup(config, key) for key in keys}
        if ident in seen:
            first = cells[seen[ident]]
            raise _Invalid("grid", f"cells {first.index} ({_assignment(first.params, names)}) and {index} "
                                   f"({_assignment(params, names)}) resolve to the same config; remove the duplicate value")
        seen[ident] = index
        cells.append(Cell(id=ident, index=index, params=params, config=config))
    return cells


def _blame(exc: _Invalid, keys: list[str], choice: tuple[int, ...], swept: dict[str, list[Any]],
           written: dict[str, str], names: dict[str, str], index: int) -> _Invalid:
    """Report a cell's error at the grid entry that caused it, or name the cell."""
    if exc.key in swept:
        return _Invalid(f"grid.{written[exc.key]}[{choice[keys.index(exc.key)]}]", exc.message)
    if not keys:
        return exc
    params = {k: swept[k][i] for k, i in zip(keys, choice)}
    return _Invalid(exc.key, f"{exc.message} (in the grid cell {_assignment(params, names)})")


def _assignment(params: dict[str, Any], names: dict[str, str]) -> str:
    return ", ".join(f"{names[k]}={v!r}" for k, v in params.items())


def _lookup(config: dict[str, Any], dotted: str) -> Any:
    section, _, name = dotted.partition(".")
    return config[section][name]

