"""The training engine: its loss convention against the function-space closed form, divergence
as a result, determinism, and the settings' validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.empirical import train
from genlab.settings import SettingsError, TrainSettings
from genlab.kernels import empirical_ntk, gd_dynamics
from genlab.models import ArchSpec


def _data(n: int = 24, d: int = 5, k: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, k))


@pytest.mark.parametrize("alpha", [None, 3.0])
def test_gd_on_a_linear_model_is_the_function_space_closed_form(alpha: float | None) -> None:
    """A depth-0 net is linear in its parameters, so full-batch GD on 1/(2n) sum ||f - y||^2 is
    exactly f_{s+1} = f_s - (lr/n) Theta (f_s - y) (with the 1/alpha^2 loss scale cancelling the
    alpha^2 of the scaled NTK). Agreement to 1e-9 (float64 rounding over 40 steps) pins the
    convention t = lr * steps that theory and measurement share."""
    x, y = _data()
    net = ArchSpec(depth=0, b_std=0.5, out_dim=2).to_torch(1, input_shape=(5,), seed=0, alpha=alpha, dtype=torch.float64)
    with torch.no_grad():
        f0 = net(torch.from_numpy(x)).numpy()
    kernel = empirical_ntk(net, x, per_output=True)[:, :, 0, 0]  # outputs have separate weights
    assert np.allclose(empirical_ntk(net, x, per_output=True)[:, :, 0, 1], 0)
    scale = 1.0 if alpha is None else 1.0 / alpha**2
    settings = TrainSettings(lr=0.3, steps=40, measure_every=10)
    run = train(net, x, y, settings)
    expected = gd_dynamics(kernel, y, lr=0.3 * scale, steps=run.steps, f0_train=f0)
    with torch.no_grad():
        final = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(final, expected.f_train[-1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(run.train_loss, expected.train_loss, rtol=1e-9)


def test_divergence_is_recorded_not_raised() -> None:
    x, y = _data()
    net = ArchSpec(depth=1).to_torch(16, input_shape=(5,), seed=0, dtype=torch.float64)
    run = train(net, x, y, TrainSettings(lr=500.0, steps=200))
    assert run.diverged and run.final_step < 200
    assert run.steps[-1] == run.final_step  # the diverging loss is recorded where it happened
    assert not np.isfinite(run.train_loss[-1]) or run.train_loss[-1] > 1e6


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_minibatch_training_is_deterministic_and_learns(optimizer: str) -> None:
    x, y = _data(n=40)
    settings = TrainSettings(optimizer=optimizer, lr=0.05 if optimizer == "sgd" else 0.01, steps=400, batch_size=8, seed=3)
    losses = []
    for _ in range(2):
        net = ArchSpec(depth=1, activation="gelu").to_torch(32, input_shape=(5,), seed=1, dtype=torch.float64)
        losses.append(train(net, x, y, settings).train_loss)
    np.testing.assert_array_equal(losses[0], losses[1])
    assert losses[0][-1] < 0.7 * losses[0][0]


def test_hooks_and_test_loss_are_recorded_at_measured_steps() -> None:
    x, y = _data()
    net = ArchSpec(depth=1).to_torch(8, input_shape=(5,), seed=0, dtype=torch.float64)
    seen = []
    run = train(net, x, y, TrainSettings(lr=0.1, steps=25, measure_every=10), x_test=x[:5], y_test=y[:5],
                hooks=[lambda step, module: seen.append(step) or {"step_twice": 2.0 * step}])
    assert run.steps.tolist() == [0, 10, 20, 25] == seen
    assert run.test_loss is not None and run.test_loss.shape == (4,)
    assert run.measurements["step_twice"].tolist() == [0.0, 20.0, 40.0, 50.0]


@pytest.mark.parametrize(
    ("loss", "targets", "match"),
    [
        ("logistic", np.zeros((24, 1)), r"'logistic' needs one target column with values in \{-1, \+1\}"),
        ("cross_entropy", np.ones((24, 1)), r"'cross_entropy' needs one-hot targets with >= 2 columns"),
    ],
)
def test_loss_target_mismatch_is_named(loss: str, targets: np.ndarray, match: str) -> None:
    net = ArchSpec(depth=1).to_torch(8, input_shape=(5,), seed=0)
    with pytest.raises(ValueError, match=match):
        train(net, _data()[0], targets, TrainSettings(loss=loss, steps=1))


def test_classification_losses_train() -> None:
    x, _ = _data(n=40)
    labels = (x[:, 0] > 0).astype(int)
    pm = (2.0 * labels - 1)[:, None]
    onehot = np.eye(2)[labels]
    for loss, y, out in (("logistic", pm, 1), ("cross_entropy", onehot, 2)):
        net = ArchSpec(depth=1, out_dim=out).to_torch(32, input_shape=(5,), seed=0, dtype=torch.float64)
        run = train(net, x, y, TrainSettings(loss=loss, lr=0.5, steps=300))
        assert run.train_loss[-1] < 0.5 * run.train_loss[0], loss


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "lbfgs"}, r"train\.optimizer must be one of 'gd', 'sgd', 'adam', .*; got 'lbfgs'"),
        ({"lr": 0}, r"train\.lr must be a finite float > 0; got 0"),
        ({"steps": 0}, r"train\.steps must be an int >= 1; got 0"),
        ({"optimizer": "gd", "batch_size": 8}, r"train\.batch_size must be None for optimizer 'gd'"),
        ({"momentum": 1.0}, r"train\.momentum must be a float in \[0, 1\); got 1\.0"),
        ({"warmup_steps": 5, "steps": 2}, r"train\.warmup_steps must be an int in \[0, steps=2\]; got 5"),
        ({"device": "tpu"}, r"train\.device must be one of 'cpu', 'cuda', 'auto'; got 'tpu'"),
    ],
)
def test_bad_settings_name_the_key(kwargs: dict, match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        TrainSettings(**kwargs)


def test_auto_device_falls_back_to_cpu_without_a_gpu() -> None:
    from genlab.empirical import resolve_device

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_measured_steps_schedule() -> None:
    """One schedule for the training loop, the theory curves and the snapshot budget."""
    assert TrainSettings(steps=25, measure_every=10).measured_steps == (0, 10, 20, 25)
    assert TrainSettings(steps=100, measure_every=10).measured_steps == tuple(range(0, 101, 10))
    assert len(TrainSettings(steps=1000).measured_steps) == 51  # default: steps // 50
