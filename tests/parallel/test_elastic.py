"""Elastic membership through torchrun's elastic agent and the atomically saved center.

- A worker killed mid-run (SIGKILL from outside, as a crashed node would be) does not end
  training: torchrun's agent stops the group and starts it again (``--max-restarts``), every
  worker resumes from the saved center at the saved round, and the run spends the rest of its
  sample budget. Its final loss is compared with an undisturbed run of the same config.
- A worker that joins later: the group re-forms with one more worker (torchrun's behaviour on
  a membership change: every worker restarts) and the newcomer starts from the saved center.

Both start real process groups of torchrun (3 workers for the kill test): slow on 2 cores, so
marked ``slow``. Measured here (machine shared with other jobs, load ~10): see each test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import torch

from genlab.parallel import launch, parse_config, prepare_run, torchrun_command
from genlab.parallel._state import load_state

pytestmark = pytest.mark.slow

CONFIG = """
[task]
name = "digits"
n_train = 300
n_test = 300
[model]
kind = "fc"
depth = 1
parametrization = "standard"
w_std = 1.4
b_std = 0.1
[parallel]
method = "easgd"
lr = 0.1
width = 32
batch_size = 16
samples = 28800
tau = 5
alpha = 0.1
measurements = 2
sharpness_samples = 100
"""


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


def _wait_for_round(run_dir: Path, round_: int, procs: list[subprocess.Popen], timeout_s: float = 300) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = load_state(run_dir / "state.pt")
        if state is not None and int(state["round"]) >= round_:
            return int(state["round"])
        assert all(p.poll() is None for p in procs), "the run ended before the event"
        time.sleep(0.2)
    raise AssertionError(f"round {round_} not reached in {timeout_s} s")


def _finish(procs: list[subprocess.Popen], timeout_s: float = 400) -> None:
    for p in procs:
        out, err = p.communicate(timeout=timeout_s)
        assert p.returncode == 0, err[-3000:]


def test_killed_worker_does_not_end_training(tmp_path: Path) -> None:
    """Measured: undisturbed 3-worker run final train loss 0.0198 (test error 0.073, 120 rounds);
    with rank 1 killed at round 20 the group restarts once from the saved center (round 20, all
    three ranks exactly on it) and ends at 0.0203 (test error 0.073), ratio 1.02. Both tests
    together: 193 s here at load ~15 (1 min 22 s CPU). Bound: within a factor 2 of the undisturbed run (the restart resets the
    workers onto the center, which costs a little progress; a run that restarted from the
    initial weights or lost the budget would sit at the init loss ~2.3, > 100x)."""
    cfg = parse_config(tomllib.loads(CONFIG), nproc=3)
    quiet, killed = tmp_path / "quiet", tmp_path / "killed"
    prepare_run(cfg, "easgd", 3, quiet)
    launch(quiet, 3, launcher="spawn")
    prepare_run(cfg, "easgd", 3, killed)
    agent = subprocess.Popen(torchrun_command(killed, 3, max_restarts=2), env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    at = _wait_for_round(killed, 20, [agent])
    victim = int((killed / "pids" / "rank1.pid").read_text())
    os.kill(victim, signal.SIGKILL)
    _finish([agent])

    result = json.loads((killed / "result.json").read_text())
    reference = json.loads((quiet / "result.json").read_text())
    assert result["restarts"] >= 1 and result["samples"] == reference["samples"] == 28800
    starts = [json.loads(line) for line in (killed / "starts.jsonl").read_text().splitlines()]
    resumed = [s for s in starts if s["restart"] >= 1]
    assert {s["rank"] for s in resumed} == {0, 1, 2}
    assert all(s["round"] >= at - 1 and s["distance_to_saved_center"] == 0.0 for s in resumed)
    rounds = pd.read_csv(killed / "rounds.csv")
    assert list(rounds["round"]) == list(range(len(rounds)))  # no round lost or repeated in the record
    init_loss = rounds["train_loss"].iloc[0]
    assert result["train_loss"] < 2 * reference["train_loss"] < init_loss / 50


def test_joining_worker_picks_up_the_center(tmp_path: Path) -> None:
    """The group re-forms with one more worker, as torchrun does on a membership change (all
    workers restart, the newcomers included): one worker runs alone until round 20 is saved, its
    agent is stopped, and a 2-worker group resumes on the same run directory. Measured: the new
    group starts at the saved round with both ranks exactly on the saved center (rank 1 never
    existed before), and the training loss goes on from where it was, far below the init loss.

    (Two torchrun agents on one c10d rendezvous, ``--nnodes 1:2``, the other route, timed out
    in torchrun's own rank assignment here: ``role_info`` keys, torch 2.13; not pursued.)"""
    cfg = parse_config(tomllib.loads(CONFIG.replace("samples = 28800", "samples = 9600")), nproc=1)
    run_dir = tmp_path / "join"
    prepare_run(cfg, "easgd", 1, run_dir)
    alone = subprocess.Popen(torchrun_command(run_dir, 1), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        at = _wait_for_round(run_dir, 20, [alone])
    finally:
        alone.send_signal(signal.SIGTERM)  # the agent stops its worker and exits
        alone.wait(timeout=120)
    grown = subprocess.run(torchrun_command(run_dir, 2), env=_env(), capture_output=True, text=True, timeout=600)
    assert grown.returncode == 0, grown.stderr[-3000:]
    starts = [json.loads(line) for line in (run_dir / "starts.jsonl").read_text().splitlines()]
    joined = [s for s in starts if s["world"] == 2]
    assert {s["rank"] for s in joined} == {0, 1}
    assert all(s["round"] >= at and s["distance_to_saved_center"] == 0.0 for s in joined)
    rounds = pd.read_csv(run_dir / "rounds.csv")
    assert list(rounds["round"]) == list(range(len(rounds)))
    assert rounds["workers"].iloc[1] == 1 and rounds["workers"].iloc[-1] == 2
    switch = int(rounds.index[rounds["workers"] == 2][0])
    assert rounds["train_loss"].iloc[switch] < 1.5 * rounds["train_loss"].iloc[switch - 1]
    assert rounds["train_loss"].iloc[switch] < rounds["train_loss"].iloc[0] / 2
    state = torch.load(run_dir / "state.pt", weights_only=True)
    assert int(state["samples"]) <= 9600 and int(state["restarts"]) >= 1
    assert json.loads((run_dir / "result.json").read_text())["nproc"] == 2
