"""Fuzzed bad input: hypothesis draws malformed study configs (wrong types, unknown keys,
negative or zero sizes, empty and huge grids, NaN, wrong nesting, non-UTF-8 bytes, invalid
TOML, missing files) and every one must give, through the CLI's ``main``: exit status 2, one
line on stderr naming the offending key or the file, no traceback, nothing written to an
existing run directory (and no cell run). A few real subprocess runs check the same from the
outside."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genlab.cli import main
from genlab.study import _study
from tests.study.conftest import BASE

# Values of the wrong type for any key (TOML can carry each; NaN and inf are floats).
WRONG_TYPE = st.one_of(
    st.text(max_size=5).map(lambda s: "x" + s),
    st.lists(st.integers(-3, 3), max_size=2),
    st.dictionaries(st.sampled_from(["a", "b"]), st.integers(0, 3), max_size=2),
    st.booleans(),
)
NAN_OR_INF = st.sampled_from([math.nan, math.inf, -math.inf])
NON_POSITIVE_INT = st.integers(-(2**40), 0)
NEGATIVE_FLOAT = st.floats(-1e9, -1e-9)
TOML_LIKE_JUNK = st.sampled_from(["[task", "name = ", "x = [1,", "= 3", "[[grid]]\nwidth=1\n[grid]", 'a = "\\q"'])


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value


def _del(data: dict[str, Any], path: tuple[str, ...]) -> None:
    node = data
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]


# Each mutation: (strategy of the bad value, key path, the key the message must name).
# Sizes and rates: a non-positive or NaN size, a negative rate, the wrong type anywhere.
SIZES = [("model", "width"), ("model", "depth"), ("task", "n_train"), ("train", "steps")]
TYPED = [("name",), ("description",), ("quantities",), ("task", "name"), ("task", "n_train"), ("model", "width"),
         ("model", "activation"), ("train", "lr"), ("train", "steps"), ("train", "seed"), ("regime", "drift_threshold"),
         ("resources", "cpus"), ("resources", "max_retries"), ("table", "aggregate")]
SECTIONS = ["task", "model", "train", "grid", "table", "regime", "resources"]


@st.composite
def malformed(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A malformed config (as a dict) and the dotted key its error must name."""
    data = copy.deepcopy(BASE)
    kind = draw(st.sampled_from(["type", "size", "nan", "unknown", "missing", "nesting", "grid_empty", "grid_huge",
                                 "grid_bad_value", "grid_unknown", "rate", "name", "quantity", "resources"]))
    if kind == "type":
        path = draw(st.sampled_from(TYPED))
        value = draw(WRONG_TYPE)
        if path == ("quantities",) and isinstance(value, list):
            value = value or 3
        if path in (("train", "seed"), ("task", "n_train"), ("model", "width")) and isinstance(value, bool):
            value = "x"
        if path == ("table", "aggregate") and isinstance(value, str):
            value = 3
        if path in (("task", "name"), ("model", "activation"), ("name",)) and isinstance(value, str):
            value = value + "!"  # no such task / activation; not a valid name
        if path == ("description",) and isinstance(value, str):
            value = 5
        _set(data, path, value)
        data["grid"] = {k: v for k, v in data["grid"].items() if k not in path}
        return data, ".".join(path)
    if kind == "size":
        path = draw(st.sampled_from(SIZES))
        value = draw(NON_POSITIVE_INT)
        _set(data, path, value - 1 if path[-1] == "depth" else value)  # depth 0 is a linear model: valid
        data["grid"].pop(path[-1], None)
        return data, ".".join(path)
    if kind == "nan":
        path = draw(st.sampled_from([("train", "lr"), ("model", "alpha"), ("model", "w_std"), ("regime", "error_tolerance"),
                                     ("task", "noise"), ("resources", "gpus")]))
        _set(data, path, draw(NAN_OR_INF))
        data["grid"].pop(path[-1], None)
        return data, ".".join(path)
    if kind == "rate":
        path = draw(st.sampled_from([("train", "lr"), ("model", "w_std"), ("task", "noise"), ("regime", "drift_threshold")]))
        _set(data, path, draw(NEGATIVE_FLOAT))
        data["grid"].pop(path[-1], None)
        return data, ".".join(path)
    if kind == "unknown":
        section = draw(st.sampled_from(["", *SECTIONS]))
        key = draw(st.sampled_from(["widht", "n_trian", "lrate", "bogus", "Seed", "cpu"]))
        if section:
            node = data.setdefault(section, {})
            node[key] = 1 if section != "grid" else [1]
            return data, f"{section}.{key}"
        data[key] = 1
        return data, key
    if kind == "missing":
        path = draw(st.sampled_from([("name",), ("description",), ("quantities",), ("task",), ("task", "name")]))
        _del(data, path)
        return data, ".".join(path)
    if kind == "nesting":
        section = draw(st.sampled_from(SECTIONS))
        data[section] = draw(st.one_of(st.integers(-5, 5), st.text(max_size=3), st.lists(st.integers(), max_size=2)))
        return data, section
    if kind == "grid_empty":
        key = draw(st.sampled_from(list(data["grid"])))
        data["grid"][key] = []
        return data, f"grid.{key}"
    if kind == "grid_huge":
        data["grid"] = {"width": list(range(1, draw(st.integers(101, 400)))), "seed": list(range(draw(st.integers(101, 200))))}
        return data, "grid"
    if kind == "grid_bad_value":
        key, bad = draw(st.sampled_from([("width", 0), ("width", -8), ("alpha", -1.0), ("seed", "one"), ("width", math.nan),
                                         ("lr", -0.5), ("alpha", math.inf), ("width", 8.5)]))
        values = list(data["grid"].get(key, [1]))
        position = draw(st.integers(0, len(values)))
        values.insert(position, bad)
        data["grid"][key] = values
        return data, f"grid.{key}"
    if kind == "grid_unknown":
        data["grid"][draw(st.sampled_from(["model.widht", "optim.lr", "train.name", "task.name", "wdith"]))] = [1, 2]
        return data, "grid."
    if kind == "name":
        data["name"] = draw(st.sampled_from(["../../etc", "a/b", "..", "/abs", "with space", "", "ok\nnewline", "ünï"]))
        return data, "name"
    if kind == "quantity":
        position = draw(st.integers(0, len(data["quantities"])))
        data["quantities"].insert(position, draw(st.sampled_from(["test_mse_x", "", "NTK", "train_loss "])))
        return data, f"quantities[{position}]"
    # resources: impossible values
    key, bad = draw(st.sampled_from([("cpus", 0), ("cpus", -2), ("gpus", -0.5), ("max_retries", -1), ("cpus", 10**6),
                                     ("max_retries", 1.5)]))
    data["resources"] = {key: bad}
    return data, f"resources.{key}"


@pytest.fixture(scope="module")
def arena(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding an existing run directory that no bad config may touch."""
    folder = tmp_path_factory.mktemp("fuzz")
    run = folder / "existing_run"
    (run / "cells").mkdir(parents=True)
    (run / "config.toml").write_text("# an earlier run\n")
    (run / "cells" / "0123456789abcdef.json").write_text('{"status": "ok"}\n')
    (run / "results.csv").write_text("quantity,theory\n")
    return folder


def _snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "")
            for p in sorted(folder.rglob("*"))}


def _refuse_to_run(*args: Any, **kwargs: Any) -> None:
    raise AssertionError("a malformed config reached Study.run")


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, out.getvalue(), err.getvalue()


def _check(arena: Path, path: Path, key: str | None) -> None:
    run = arena / "existing_run"
    before = _snapshot(run)
    code, stdout, stderr = _cli(["run", str(path), "--out", str(run)])
    lines = stderr.strip().splitlines()
    assert code == 2, (code, stderr)
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr + stdout
    assert stdout == "", stdout
    expected = f"genlab run: error: {path}: " + (key or "")
    assert lines[0].startswith(expected), (lines[0], expected)
    assert _snapshot(run) == before


@settings(max_examples=520, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=malformed())
def test_malformed_configs_exit_2_naming_the_key(arena: Path, case: tuple[dict[str, Any], str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_study.Study, "run", _refuse_to_run)
    data, key = case
    path = arena / "study.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    _check(arena, path, key)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(
    st.binary(min_size=1, max_size=40).map(lambda b: b"name = \"x\"\n" + b"\xff" + b),  # not UTF-8
    TOML_LIKE_JUNK.map(str.encode),                                                       # not TOML
    st.just(b""),                                                                         # empty: nothing required is there
))
def test_unreadable_files_exit_2_naming_the_file(arena: Path, raw: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_study.Study, "run", _refuse_to_run)
    path = arena / "raw.toml"
    path.write_bytes(raw)
    _check(arena, path, None)


@pytest.mark.parametrize("name", ["missing.toml", "a_folder"])
def test_missing_file_or_a_folder_exits_2(arena: Path, name: str) -> None:
    (arena / "a_folder").mkdir(exist_ok=True)
    _check(arena, arena / name, None)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfe not utf-8", "is not UTF-8 text"),
        (tomli_w.dumps({**BASE, "name": "../../etc"}).encode(), "name: must match"),
        (tomli_w.dumps({**BASE, "grid": {"width": []}}).encode(), "grid.width: must not be empty"),
        (tomli_w.dumps({**BASE, "train": {"lr": math.nan}}).encode(), "train.lr: must be a finite number"),
    ],
)
def test_real_subprocess_exits_2_with_one_line(tmp_path: Path, content: bytes, fragment: str) -> None:
    """From the outside: the installed entry point, a real process (the real task registry:
    BASE's toy task is unknown there, but every case above fails before the task is looked up)."""
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    (tmp_path / "run").mkdir()
    done = subprocess.run([sys.executable, "-m", "genlab.cli", "run", str(path), "--out", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == "" and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and fragment in done.stderr, done.stderr
    assert list((tmp_path / "run").iterdir()) == []


def test_no_config_or_checkpoint_is_evaluated_as_code() -> None:
    """Static check of the package sources: configs are parsed (tomllib, json), never evaluated;
    any torch checkpoint is loaded with weights_only=True (no pickled code)."""
    import re

    import genlab

    root = Path(genlab.__file__).resolve().parent
    offenders = []
    for source in sorted(root.rglob("*.py")):
        text = source.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"(?<![\w.])(eval|exec)\(|pickle\.loads?\(|yaml\.load\(|marshal\.loads?\(", code):
                offenders.append(f"{source.relative_to(root)}:{number}: {line.strip()}")
        for match in re.finditer(r"torch\.load\(", text):
            call = text[match.start(): text.find(")", match.start()) + 1]
            if "weights_only=True" not in call:
                offenders.append(f"{source.relative_to(root)}: {call}")
    assert offenders == []


def test_a_study_name_cannot_leave_the_runs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default run directory is runs/<name>, and a name is [A-Za-z0-9_-]+ only."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_study.Study, "run", _refuse_to_run)
    for name in ("../../etc", "..", "a/b", "/etc/passwd", "x\\..\\y"):
        path = tmp_path / "s.toml"
        path.write_text(tomli_w.dumps({**BASE, "name": name}))
        code, _, stderr = _cli(["run", str(path)])
        assert code == 2 and f"{path}: name: must match" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.toml"]
