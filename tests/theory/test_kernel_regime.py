"""Kernel-regime predictions: they exist only where the GD closed form applies and converges."""

from __future__ import annotations

import numpy as np

from genlab.empirical import TrainSettings
from genlab.models import ArchSpec
from genlab.theory import TheoryContext
from genlab.theory import kernel_regime as theory


def _context(lr: float, optimizer: str = "gd") -> TheoryContext:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 1))
    spec = ArchSpec(depth=1, parametrization="standard", b_std=0.1)
    return TheoryContext(spec=spec, width=100, centered=True, settings=TrainSettings(optimizer=optimizer, lr=lr, steps=50),
                         x_train=x, y_train=y, x_test=x[:5], y_test=y[:5], kind="regression", steps=np.array([0, 25, 50]))


def test_no_prediction_beyond_the_linear_stability_limit() -> None:
    """Standard parametrization: the NTK grows with the width (here lambda_max / n ~ width), so a
    learning rate stable for the network can exceed 2n / lambda_max of the infinite-width
    linearization; the closed form then diverges and must not be reported as a prediction."""
    stable, unstable = _context(1e-3), _context(10.0)
    assert stable.trajectory().diverged is False and unstable.trajectory().diverged is True
    assert np.isfinite(theory.test_mse(stable).value)
    assert theory.test_mse(unstable).value is None
    assert theory.train_loss_curve(unstable).value is None and theory.train_loss_curve(unstable).curve is None


def test_no_dynamics_prediction_for_adam() -> None:
    assert theory.test_mse(_context(1e-3, optimizer="adam")).value is None
    assert theory.ntk_drift(_context(1e-3, optimizer="adam")).value == 0.0  # frozen-kernel limit still holds
