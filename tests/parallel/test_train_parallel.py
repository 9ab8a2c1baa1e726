"""`genlab train-parallel` end to end: 2 spawned gloo workers write the run directory; bad
configs exit 2 with one line naming the key."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from genlab.cli import main

CONFIG = """
name = "tiny"
[task]
name = "digits"
n_train = 200
n_test = 200
[model]
kind = "fc"
depth = 1
parametrization = "standard"
w_std = 1.4
b_std = 0.1
[parallel]
lr = 0.1
width = 32
batch_size = 16
samples = 3200
tau = 5
measurements = 2
sharpness_samples = 100
[sweep]
method = ["lsgd"]
"""


def test_cli_runs_two_workers_and_writes_the_run_directory(tmp_path: Path) -> None:
    """End to end through `genlab train-parallel` with 2 spawned workers (Leader SGD, the method
    with the most collectives per round): the files, one row per
    round, the budget (3200 samples = 100 steps per worker = 20 rounds), the sharpness on the
    schedule, and a center that learned (test error < 0.5 from ~0.9 at init on 10 classes)."""
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train-parallel", str(config), "--nproc", "2", "--out", str(out), "--launcher", "spawn"]) == 0
    for name in ("summary.csv", "table.md", "figure.png", "config.json"):
        assert (out / name).is_file()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["method"]) == ["lsgd"] and set(summary["nproc"]) == {2}
    for method in ("lsgd",):
        rounds = pd.read_csv(out / f"{method}-p2" / "rounds.csv")
        assert list(rounds["round"]) == list(range(21)) and rounds["samples"].iloc[-1] == 3200
        assert rounds["sharpness"].notna().sum() == 3  # init, round 10, round 20
        assert rounds["sharpness"].iloc[-1] > 0 and rounds["spread"].iloc[1:].gt(0).all()
        assert rounds["test_error"].iloc[-1] < 0.5 < rounds["test_error"].iloc[0]
        result = json.loads((out / f"{method}-p2" / "result.json").read_text())
        assert result["rounds"] == 20 and result["communications"] == 20 and result["restarts"] == 0
    # a second call reuses both finished runs
    before = (out / "lsgd-p2" / "result.json").stat().st_mtime_ns
    assert main(["train-parallel", str(config), "--nproc", "2", "--out", str(out), "--launcher", "spawn"]) == 0
    assert (out / "lsgd-p2" / "result.json").stat().st_mtime_ns == before


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ("lr = 0.1", "parallel.lr"),
        ("tau = 5", "parallel.tau"),
        ('method = ["lsgd"]', "sweep.method"),
        ('name = "digits"', "task.name"),
        ("n_train = 200", "task.n_train"),
        ("width = 32", "parallel.width"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: str, key: str) -> None:
    bad = {"lr = 0.1": "lr = -1", "tau = 5": "tau = 0", 'method = ["lsgd"]': 'method = ["hogwild"]',
           'name = "digits"': 'name = "imagenet"', "n_train = 200": "n_train = 5000", "width = 32": "width = 0"}[edit]
    config = tmp_path / "bad.toml"
    config.write_text(CONFIG.replace(edit, bad), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train-parallel", str(config), "--out", str(out), "--launcher", "spawn"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and key in err[0], err
    assert not out.exists()


def test_unknown_parallel_key_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(CONFIG.replace("tau = 5", "tau = 5\nmomentum = 0.9"), encoding="utf-8")
    assert main(["train-parallel", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "parallel.momentum" in capsys.readouterr().err
