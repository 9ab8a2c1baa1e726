"""genlab.optim inside genlab's training loop: the training loop against the optimizers' own
closure API, gradient evaluations per step, hooks, the linear scaling rule and warm-up, and the
one-line config errors of `genlab run`."""

from __future__ import annotations

import numpy as np
import pytest
import tomli_w
import torch

from genlab.cli import main
from genlab.empirical import train
from genlab.settings import SettingsError, TrainSettings
from genlab.empirical._train import _schedule, per_sample_loss
from genlab.models import ArchSpec
from genlab.optim import SAM, EntropySGD


def _data(n: int = 40, d: int = 5, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)), rng.normal(size=(n, k))


def _net(seed: int = 1) -> torch.nn.Module:
    return ArchSpec(depth=1, activation="gelu").to_torch(16, input_shape=(5,), seed=seed, dtype=torch.float64)


def _flat(net: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()]).numpy()


def _count_gradient_forwards(net: torch.nn.Module) -> list[int]:
    """Forward passes with autograd on (the loop's measurements run under no_grad)."""
    count = [0]
    net.register_forward_pre_hook(lambda *_: count.__setitem__(0, count[0] + torch.is_grad_enabled()))
    return count


def _manual(net: torch.nn.Module, opt: torch.optim.Optimizer, x: np.ndarray, y: np.ndarray, steps: int) -> None:
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = per_sample_loss(net(xt), yt, "mse").mean()
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)


def test_sam_in_the_loop_is_sam_step_with_a_closure() -> None:
    """Full batch: the loop (first_step / second_step around its own backward) and
    SAM.step(closure) on the same data give the same parameters (1e-13: the loop's backward may
    order float sums differently); 2 gradient evaluations per step; rho = 0 is SGD bit for bit."""
    x, y = _data()
    settings = TrainSettings(optimizer="sam", sam_rho=0.1, lr=0.2, momentum=0.9, steps=20)
    net = _net()
    count = _count_gradient_forwards(net)
    train(net, x, y, settings)
    assert count[0] == 2 * 20
    reference = _net()
    _manual(reference, SAM(reference.parameters(), torch.optim.SGD, rho=0.1, lr=0.2, momentum=0.9), x, y, 20)
    np.testing.assert_allclose(_flat(net), _flat(reference), rtol=0, atol=1e-13)

    zero, sgd = _net(), _net()
    for net_, opt in ((zero, "sam"), (sgd, "sgd")):
        run = train(net_, x, y, TrainSettings(optimizer=opt, sam_rho=0.0, lr=0.1, momentum=0.5, batch_size=8, steps=30))
    assert np.array_equal(_flat(zero), _flat(sgd)) and not run.diverged


def test_asam_differs_from_sam() -> None:
    x, y = _data()
    nets = {}
    for opt in ("sam", "asam"):
        nets[opt] = _net()
        train(nets[opt], x, y, TrainSettings(optimizer=opt, sam_rho=0.1, lr=0.1, steps=5))
    assert not np.allclose(_flat(nets["sam"]), _flat(nets["asam"]))


def test_entropy_sgd_in_the_loop_is_algorithm_1() -> None:
    """Full batch, noise 0: one loop step is one EntropySGD.step with L = 3 gradient evaluations
    (the first reused from the loop's own backward); agreement to 1e-13."""
    x, y = _data()
    kw = dict(entropy_sgd_steps=3, entropy_sgd_lr=0.05, entropy_sgd_gamma=0.5, entropy_sgd_noise=0.0, entropy_sgd_scoping=0.01)
    settings = TrainSettings(optimizer="entropy_sgd", lr=0.5, momentum=0.9, entropy_sgd_nesterov=True, steps=15, **kw)
    net = _net()
    count = _count_gradient_forwards(net)
    run = train(net, x, y, settings)
    assert count[0] == 3 * 15 and run.final_step == 15
    reference = _net()
    opt = EntropySGD(
        reference.parameters(), lr=0.5, langevin_lr=0.05, langevin_steps=3, gamma=0.5, scoping=0.01, noise=0.0,
        momentum=0.9, nesterov=True,
    )
    _manual(reference, opt, x, y, 15)
    np.testing.assert_allclose(_flat(net), _flat(reference), rtol=0, atol=1e-13)


@pytest.mark.parametrize(
    "settings",
    [
        TrainSettings(optimizer="entropy_sgd", lr=1.0, batch_size=8, steps=60, entropy_sgd_steps=3, entropy_sgd_gamma=1.0,
                      entropy_sgd_lr=0.05, entropy_sgd_noise=1e-3, measure_every=20),
        TrainSettings(optimizer="lars", lr=2.0, momentum=0.9, lars_trust=0.01, batch_size=8, steps=200, measure_every=50),
        TrainSettings(optimizer="lamb", lr=0.02, batch_size=8, steps=200, measure_every=50),
        TrainSettings(optimizer="asam", sam_rho=0.5, lr=0.05, batch_size=8, steps=200, measure_every=50),
    ],
    ids=lambda s: s.optimizer,
)
def test_minibatch_optimizers_learn_deterministically_with_hooks(settings: TrainSettings) -> None:
    """Each trains (loss falls below 70% of its start), twice to identical numbers (seeded batches
    and Entropy-SGD noise), and the measurement hooks run at every measured step."""
    x, y = _data()
    runs = []
    for _ in range(2):
        seen: list[int] = []

        def hook(step: int, module: torch.nn.Module, seen: list[int] = seen) -> dict[str, float]:
            seen.append(step)
            return {"norm": float(np.linalg.norm(_flat(module)))}

        runs.append((train(_net(), x, y, settings, hooks=[hook]), seen))
    (first, seen), (second, _) = runs
    np.testing.assert_array_equal(first.train_loss, second.train_loss)
    assert first.train_loss[-1] < 0.7 * first.train_loss[0], first.train_loss
    assert tuple(seen) == settings.measured_steps and len(first.measurements["norm"]) == len(seen)


def test_linear_scaling_rule_and_warmup_constant() -> None:
    """lr_scaling = "linear": batch 16 with base_batch 8 trains exactly as lr x 2 unscaled;
    warmup_constant ramps (s + 1) / warmup for s < warmup, then 1."""
    x, y = _data()
    scaled, plain = _net(), _net()
    train(scaled, x, y, TrainSettings(optimizer="sgd", lr=0.05, lr_scaling="linear", base_batch=8, batch_size=16, steps=30))
    train(plain, x, y, TrainSettings(optimizer="sgd", lr=0.1, batch_size=16, steps=30))
    assert np.array_equal(_flat(scaled), _flat(plain))
    s = TrainSettings(optimizer="sgd", lr=0.1, lr_scaling="linear", base_batch=32, batch_size=256, steps=10)
    assert s.effective_lr(1000) == pytest.approx(0.8) and s.effective_lr(100) == pytest.approx(0.1 * 100 / 32)
    factor = _schedule(TrainSettings(schedule="warmup_constant", warmup_steps=4, steps=10))
    assert [factor(t) for t in range(7)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "sam", "sam_rho": -0.1}, r"train\.sam_rho must be a finite float >= 0; got -0\.1"),
        ({"entropy_sgd_steps": 0}, r"train\.entropy_sgd_steps must be an int >= 1; got 0"),
        ({"entropy_sgd_alpha": 1.5}, r"train\.entropy_sgd_alpha must be a float in \(0, 1\]; got 1\.5"),
        ({"optimizer": "entropy_sgd", "entropy_sgd_nesterov": True}, r"train\.entropy_sgd_nesterov needs train\.momentum > 0"),
        ({"lars_trust": 0.0}, r"train\.lars_trust must be a finite float > 0; got 0\.0"),
        ({"lr_scaling": "sqrt"}, r"train\.lr_scaling must be one of 'none', 'linear'; got 'sqrt'"),
        ({"base_batch": 0}, r"train\.base_batch must be an int >= 1; got 0"),
        ({"optimizer": "gd", "lr_scaling": "linear"}, r"train\.lr_scaling must be 'none' for optimizer 'gd'"),
    ],
)
def test_bad_optimizer_settings_name_the_key(kwargs: dict, match: str) -> None:
    with pytest.raises(SettingsError, match=match):
        TrainSettings(**kwargs)


@pytest.mark.parametrize(
    ("train_section", "key"),
    [({"optimizer": "sam", "sam_rho": -1.0}, "train.sam_rho"), ({"optimizer": "lion"}, "train.optimizer"),
     ({"optimizer": "lars", "lars_trust": "big"}, "train.lars_trust")],
)
def test_genlab_run_rejects_bad_optimizer_config(tmp_path, capsys, train_section: dict, key: str) -> None:
    """Exit status 2, one line on stderr naming train.<key>, nothing written."""
    config = {
        "name": "bad_optim", "description": "bad optimizer settings", "quantities": ["train_loss"],
        "task": {"name": "digits", "n_train": 50, "n_test": 50},
        "model": {"kind": "fc", "depth": 1, "width": 8, "out_dim": 10},
        "train": {"steps": 5, "batch_size": 10, **train_section},
    }
    path = tmp_path / "bad.toml"
    path.write_text(tomli_w.dumps(config), encoding="utf-8")
    assert main(["run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err, err
    assert not (tmp_path / "run").exists()


def test_steps_to_target_loss_is_the_first_measured_step_below_target() -> None:
    """Against a plain scan of the recorded curve: the first measured step whose loss is <= 5% of
    the initial loss; NaN never counts; None when the target is not reached."""
    from genlab.empirical._context import EmpiricalContext
    from genlab.empirical.optimization import TARGET_FRACTION, first_step_below, steps_to_target_loss

    assert first_step_below(np.array([0, 10, 20, 30]), np.array([2.0, np.nan, 0.1, 0.05]), 0.1) == 20
    assert first_step_below(np.array([0, 10]), np.array([2.0, 1.0]), 0.1) is None
    x, _ = _data()
    y = 0.3 * x[:, :2]  # a learnable target: the loss falls to ~3% of its start (measured)
    net = _net()
    run = train(net, x, y, TrainSettings(optimizer="sgd", lr=0.05, momentum=0.9, batch_size=8, steps=300, measure_every=10))
    ctx = EmpiricalContext(x, y, x, y, "regression", TrainSettings(), _net(), net, run)
    expected = None
    for step, loss in zip(run.steps, run.train_loss, strict=True):
        if loss <= TARGET_FRACTION * run.train_loss[0]:
            expected = float(step)
            break
    assert expected is not None and steps_to_target_loss(ctx).value == expected
