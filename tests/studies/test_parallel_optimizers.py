"""studies/parallel_optimizers.toml on a reduced grid (2 workers, the four methods), run for real.

Full study (`genlab train-parallel studies/parallel_optimizers.toml`, 12 runs, 32 000 samples
each, measured 2026-11-22 on 2 shared cores at load ~13: 6.5 min in all, 10-70 s per run):

| method | p | test error | train loss | sharpness | spread |
|---|---|---|---|---|---|
| easgd | 1 / 2 / 4 | 0.030 / 0.041 / 0.043 | 0.040 / 0.064 / 0.109 | 0.689 / 0.878 / 1.100 | 0.095 / 0.108 / 0.142 |
| lsgd | 1 / 2 / 4 | 0.033 / 0.033 / 0.041 | 0.016 / 0.041 / 0.089 | 0.373 / 0.704 / 0.999 | 0 / 0.043 / 0.097 |
| local_sgd | 1 / 2 / 4 | 0.033 / 0.031 / 0.038 | 0.016 / 0.039 / 0.085 | 0.373 / 0.690 / 0.989 | 0 / 0.019 / 0.054 |
| data_parallel | 1 / 2 / 4 | 0.033 / 0.034 / 0.038 | 0.016 / 0.039 / 0.085 | 0.373 / 0.688 / 0.993 | 0 |

With one worker LSGD, local SGD and data-parallel SGD are the same SGD run (identical numbers).
The hypothesis (elastic / leader methods flatter at equal or better test error) is NOT borne
out at this budget: EASGD's center is the sharpest at every p and no better in test error, and
LSGD is indistinguishable from local SGD. With cross-entropy the sharpness falls as the loss
falls (margins grow), and at a fixed sample budget the center that is trained less (EASGD's
lagging center; more workers = fewer steps each) is sharper: across runs sharpness follows the
train loss. The test asserts these measured facts, with margins of about 2x on the effects.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import kendalltau

from genlab.parallel import train_parallel

pytestmark = pytest.mark.slow

STUDY = Path(__file__).resolve().parents[2] / "studies" / "parallel_optimizers.toml"


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    data = tomllib.loads(STUDY.read_text(encoding="utf-8"))
    data["sweep"]["nproc"] = [2]  # the reduced grid: the four methods with 2 workers
    return train_parallel(data, tmp_path_factory.mktemp("po") / "run", launcher="spawn").set_index("method")


def test_every_method_learns_the_task(summary: pd.DataFrame) -> None:
    """Measured test error 0.031-0.041 (10 classes: chance 0.9); bound 0.08."""
    assert (summary["test_error"] < 0.08).all()
    assert (summary["samples"] == 32000).all() and (summary["nproc"] == 2).all()
    assert summary.loc["data_parallel", "communications"] == 4 * summary.loc["easgd", "communications"]


def test_spread_orders_the_coupling(summary: pd.DataFrame) -> None:
    """Spread around the reference at the end: EASGD 0.108 (weak elastic pull alpha 0.1) > LSGD
    0.043 (pulled to the leader) > local SGD 0.019 (averaged every 4 steps) > data-parallel 0."""
    s = summary["spread"]
    assert s["easgd"] > 1.5 * s["lsgd"] and s["lsgd"] > 1.5 * s["local_sgd"] and s["local_sgd"] > 0
    assert s["data_parallel"] < 1e-5


def test_elastic_center_is_not_flatter_here(summary: pd.DataFrame) -> None:
    """Where the expectation fails: EASGD's center 0.878 vs 0.688-0.704 for the others (+25%),
    with no better test error (0.041 vs 0.031-0.034). Asserted: not flatter than local SGD."""
    assert summary.loc["easgd", "sharpness"] > summary.loc["local_sgd", "sharpness"]
    assert summary.loc["easgd", "test_error"] >= summary["test_error"].min()


def test_sharpness_follows_the_train_loss(summary: pd.DataFrame) -> None:
    """Across the four runs the sharpness ranks as the train loss does (measured Kendall tau 1;
    the local-SGD / data-parallel pair differs in the third digit). Bound: tau > 0.3."""
    tau = kendalltau(summary["train_loss"], summary["sharpness"]).statistic
    assert tau > 0.3
