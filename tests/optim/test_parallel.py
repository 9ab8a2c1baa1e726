"""Multi-worker runs: 2 spawned processes on gloo, against hand-computed values and references.

The quadratic setting is that of tests/optim/test_easgd.py (rank 1 starts from (5, 5): the
constructor broadcasts rank 0's parameters). Hand values after one round (tau = 1, lr = 0.1):

- EASGD sync, alpha 0.25: x_0 = (1, -0.85), x_1 = (0.85, -0.85), x~ = (0.95, -0.9);
  spread before the exchange (0.2 + sqrt(0.08)) / 2;
- EASGD async: x_0 = (1, -0.85), x_1 = (0.85, -0.8375), x~ = (0.95, -0.9125);
- LSGD (worker 0 leads, losses 1 < 3), one group, pulls 0.5 + 0.25: x_1 = (0.95, -0.8);
  groups of one: only the global pull 0.25: x_1 = (0.85, -0.8); the leader stays at (1, -0.8);
- local SGD: both at the mean (0.9, -0.8); data-parallel: the mean gradient (1, -2) gives
  (0.9, -0.8) on both.

Tolerance 1e-12 (float64, a few roundings; gloo's two-term sum is exact up to order).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genlab.cli import main
from tests.optim import _parallel_workers as workers

TOL = 1e-12
HAND = {  # name -> (x_0, x_1, center, spread)
    "easgd_sync": ((1, -0.85), (0.85, -0.85), (0.95, -0.9), (0.2 + math.sqrt(0.08)) / 2),
    "easgd_async": ((1, -0.85), (0.85, -0.8375), (0.95, -0.9125), (0.2 + math.sqrt(0.08)) / 2),
    "lsgd_one_group": ((1, -0.8), (0.95, -0.8), (1, -0.8), 0.1),
    "lsgd_groups_of_one": ((1, -0.8), (0.85, -0.8), (1, -0.8), 0.1),
    "local_sgd": ((0.9, -0.8), (0.9, -0.8), (0.9, -0.8), 0.1),
    "data_parallel": ((0.9, -0.8), (0.9, -0.8), (0.9, -0.8), 0.0),
}


@pytest.fixture(scope="module")
def spawned(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """Both checks on one group of 2 spawned gloo workers."""
    return workers.spawn(workers.checks, 2, tmp_path_factory.mktemp("spawned"))


@pytest.fixture(scope="module")
def quadratic(spawned: list[dict]) -> list[dict]:
    return [r["quadratic"] for r in spawned]


@pytest.mark.parametrize("name", list(HAND))
def test_one_round_on_two_workers_by_hand(quadratic: list[dict], name: str) -> None:
    x0, x1, center, spread = HAND[name]
    for rank, expected in enumerate((x0, x1)):
        got = quadratic[rank][name].numpy()
        np.testing.assert_allclose(got[:2], expected, rtol=0, atol=TOL)
        np.testing.assert_allclose(got[2:4], center, rtol=0, atol=TOL)  # the same center on every rank
        assert got[4] == 1.0  # the step ended a round
        assert abs(got[5] - spread) < TOL


@pytest.fixture(scope="module")
def regression(spawned: list[dict]) -> list[dict]:
    return [r["regression"] for r in spawned]


@pytest.mark.parametrize("name", ["easgd_sync", "easgd_async", "lsgd", "local_sgd", "data_parallel"])
def test_convergence_on_noise_free_regression(regression: list[dict], name: str) -> None:
    """Interpolating least squares: every minibatch gradient vanishes at the solution, so each
    method's center and workers converge linearly to it. Reference: numpy's lstsq. 400 steps of
    lr 0.1 on batch 8 of 64 points in 3-D contract the error below 1e-6 (measured: < 1e-9)."""
    X, y = regression[0]["X"].numpy(), regression[0]["y"].numpy()
    w_star = np.linalg.lstsq(X, y, rcond=None)[0]
    for rank in range(2):
        got = regression[rank][name].numpy()
        assert np.linalg.norm(got[:3] - w_star) < 1e-6, (rank, got[:3], w_star)
        assert np.linalg.norm(got[3:] - w_star) < 1e-6


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
