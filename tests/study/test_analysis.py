"""Analysis functions on hand-computed inputs."""

from __future__ import annotations

import math

import pytest

from genlab.study.analysis import crossover, kendall_tau, loglog_slope


def test_loglog_slope_of_a_power_law() -> None:
    assert loglog_slope([1, 2, 4, 8], [3.0, 3.0 / 2**0.5, 1.5, 3.0 / 8**0.5]) == pytest.approx(-0.5, abs=1e-12)


def test_crossover_interpolates_in_log_space() -> None:
    # y = 1/x crosses 0.1 at x = 10, between the grid points 3 and 30.
    assert crossover([1, 3, 30, 100], [1.0, 1 / 3, 1 / 30, 0.01], 0.1) == pytest.approx(10.0, rel=1e-12)
    assert math.isnan(crossover([1, 2], [1.0, 0.5], 0.1))


def test_kendall_tau_by_hand() -> None:
    """[1, 2, 3, 4] vs [1, 3, 2, 4]: 5 concordant pairs, 1 discordant, tau = (5 - 1) / 6."""
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6, rel=1e-12)
    assert kendall_tau([1, 2, 3, float("nan"), 5], [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="at least 3 finite pairs"):
        kendall_tau([1, 2], [2, 1])
