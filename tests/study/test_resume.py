"""Crash safety of `genlab run`, on a real 24-cell study in a subprocess: SIGKILL part-way and
run again (nothing finished is recomputed, no cell file is corrupt, the results equal an
uninterrupted run's), and Ctrl-C (SIGINT) stops cleanly with exit status 130.

Measured on the shared 2-core machine (loaded by other jobs): the SIGKILL test with the real
CLI and real cells takes ~70 s (rerun ~30 s, in-process reference ~22 s), so it is marked slow;
the same protocol runs by default on the toy cell function (a subprocess that imports no torch),
and the SIGINT test (~30 s loaded) on the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from genlab.study import _schema, load
from genlab.study._store import read_record
from tests.study.conftest import REAL_TASK_REGISTRY

STUDY = """\
name = "resume_probe"
description = "Twenty-four small cells to check that an interrupted run resumes without recomputing."
quantities = ["generalization_gap", "weight_change"]

[task]
name = "linear_regression"
n_train = 16
n_test = 16

[model]
depth = 1
width = 8

[train]
lr = 0.1
steps = 100

[grid]
width = [8, 16, 32, 64]
seed = [0, 1, 2, 3, 4, 5]
"""
N_CELLS = 24
GENLAB = [sys.executable, "-c", "import sys; from genlab.cli import main; sys.exit(main())"]


@pytest.fixture
def study_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(_schema, "_task_registry", REAL_TASK_REGISTRY)  # a real task, as the CLI sees it
    path = tmp_path / "resume_probe.toml"
    path.write_text(STUDY, encoding="utf-8")
    return path


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _start(study: Path, out: Path, workers: int) -> subprocess.Popen:
    return subprocess.Popen([*GENLAB, "run", str(study), "--out", str(out), "--workers", str(workers)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())


def _wait_for_cells(process: subprocess.Popen, out: Path, count: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while len(list((out / "cells").glob("*.json"))) < count:
        assert process.poll() is None, f"genlab run ended early: {process.communicate()}"
        assert time.monotonic() < deadline, "no cells finished in time"
        time.sleep(0.02)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigkill_then_rerun_recomputes_nothing_finished(study_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    process = _start(study_file, out, workers=1)
    _wait_for_cells(process, out, 4)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    files = sorted((out / "cells").glob("*.json"))
    assert 4 <= len(files) < N_CELLS, "the run was not killed part-way"
    assert all(read_record(f) is not None for f in files), "a cell file is corrupt"  # atomic writes
    before = {f.name: (f.stat().st_mtime_ns, f.read_bytes()) for f in files}

    again = subprocess.run([*GENLAB, "run", str(study_file), "--out", str(out), "--workers", "1"],
                           capture_output=True, text=True, env=_env(), timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"{N_CELLS} cells ({len(before)} cached, {N_CELLS - len(before)} computed, 0 failed)" in again.stdout
    for name, (mtime, data) in before.items():  # finished cells untouched
        path = out / "cells" / name
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == data
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["n_cached"] == len(before) and provenance["n_failed"] == 0

    reference = load(study_file).run(out=tmp_path / "reference", workers=1)  # uninterrupted, same seeds
    assert (out / "results.csv").read_bytes() == (tmp_path / "reference" / "results.csv").read_bytes()
    assert reference.cells["cached"].sum() == 0


TOY_CLI = """\
import sys
from genlab.study import _schema, _study
from genlab.cli import main
from tests.study.conftest import TOY_TASKS
from tests.study.fault_cells import sleepy_cell
_schema._task_registry = lambda: TOY_TASKS
_study._default_cell_fn = lambda: sleepy_cell
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def toy_cli_file(tmp_path: Path) -> Path:
    """A 24-cell toy study (the real CLI code path, with the toy cell function)."""
    import tomli_w

    from tests.study.conftest import study_dict

    path = tmp_path / "toy.toml"
    path.write_text(tomli_w.dumps(study_dict(grid={"alpha": [0.1, 10.0], "width": [8, 16, 32], "seed": [0, 1, 2, 3]})))
    return path


@pytest.mark.parametrize("real", [pytest.param(True, marks=pytest.mark.slow), False], ids=["real-cells", "toy-cells"])
def test_sigint_stops_workers_and_exits_130_with_a_summary(study_file: Path, toy_cli_file: Path, tmp_path: Path,
                                                           real: bool) -> None:
    """`genlab run` with 2 workers gets SIGINT after 2 cells: one summary line, exit 130, no
    traceback, no worker left. Real cells take ~50 s on the loaded machine (slow); the toy
    cells (0.3 s each, no torch) run the same CLI code in a few seconds."""
    out = tmp_path / "run"
    if real:
        process = _start(study_file, out, workers=2)
    else:
        env = {**_env(), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        process = subprocess.Popen([sys.executable, "-c", TOY_CLI, "run", str(toy_cli_file), "--out", str(out), "--workers", "2"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _wait_for_cells(process, out, 2)
    workers = _children(process.pid)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Traceback" not in stdout
    summary = [line for line in stderr.splitlines() if "interrupted:" in line]
    assert len(summary) == 1 and "Run the same command again to resume" in summary[0], stderr
    finished = len(list((out / "cells").glob("*.json")))
    assert f"interrupted: {finished} of {N_CELLS} cells finished ({finished} in this run)" in summary[0]
    assert workers, "the run had no worker processes"
    time.sleep(0.5)
    assert not [pid for pid in workers if _alive(pid)], "worker processes outlived the run"


TOY_RUN = """\
import sys
from genlab.study import _schema, parse
from tests.study.conftest import TOY_TASKS, study_dict
from tests.study.fault_cells import sleepy_cell
_schema._task_registry = lambda: TOY_TASKS
grid = {"alpha": [0.1, 10.0], "width": [8, 16, 32], "seed": [0, 1, 2, 3]}
study = parse(study_dict(grid=grid))
results = study.run(out=sys.argv[1], workers=int(sys.argv[2]), cell_fn=sleepy_cell)
print("cached", int(results.cells["cached"].sum()), "failed", len(results.failed))
"""


def _toy(out: Path, workers: int, sleep: str) -> subprocess.Popen:
    env = {**_env(), "GENLAB_TEST_SLEEP": sleep, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.Popen([sys.executable, "-c", TOY_RUN, str(out), str(workers)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("workers", [pytest.param(1, marks=pytest.mark.slow), 2])
def test_sigkill_then_rerun_on_toy_cells(tmp_path: Path, workers: int) -> None:
    """The same protocol on 24 toy cells of 0.15 s each (fast: no torch in the subprocess).
    With 2 workers (default run) the killed parent leaves its workers orphaned mid-cell: they
    must not write after it died; in-process (1 worker) is also the slow real-CLI test's case."""
    out = tmp_path / "run"
    process = _toy(out, workers, "0.15")
    _wait_for_cells(process, out, 5)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    files = sorted((out / "cells").glob("*.json"))
    assert 5 <= len(files) < N_CELLS, "the run was not killed part-way"
    assert all(read_record(f) is not None for f in files), "a cell file is corrupt"
    before = {f.name: (f.stat().st_mtime_ns, f.read_bytes()) for f in files}
    again = _toy(out, workers, "0")
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    assert f"cached {len(before)} failed 0" in stdout
    for name, (mtime, data) in before.items():
        path = out / "cells" / name
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == data
    reference = _toy(tmp_path / "reference", 1, "0")
    assert "cached 0 failed 0" in reference.communicate(timeout=120)[0]
    assert (out / "results.csv").read_bytes() == (tmp_path / "reference" / "results.csv").read_bytes()
