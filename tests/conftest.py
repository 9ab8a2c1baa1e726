"""Shared test configuration. Warnings are errors (pyproject.toml); tolerances live beside the tests."""

from __future__ import annotations

import os

# As genlab's CLI does: passive OpenMP waiting, so that torch's threads do not collapse when the
# test run shares the cores (set before torch is imported by any test module).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def rel_frobenius(estimate: np.ndarray, reference: np.ndarray) -> float:
    """||estimate - reference||_F / ||reference||_F."""
    return float(np.linalg.norm(np.asarray(estimate) - np.asarray(reference)) / np.linalg.norm(reference))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)
