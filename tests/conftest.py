"""Shared test configuration. Warnings are errors (pyproject.toml); tolerances live beside the tests."""

from __future__ import annotations

import numpy as np
import pytest


def rel_frobenius(estimate: np.ndarray, reference: np.ndarray) -> float:
    """||estimate - reference||_F / ||reference||_F."""
    return float(np.linalg.norm(np.asarray(estimate) - np.asarray(reference)) / np.linalg.norm(reference))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)
