"""The heavy-ball stability threshold 2 (1 + beta)/eta - wd: against torch.optim.SGD and genlab's
own training on quadratics, and as the one formula the theory prediction, its sympy closed form
and the empirical ``steps_to_eos`` all use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab._stability import eos_threshold

#: (lr, momentum, weight decay): plain GD, momentum alone, weight decay alone, and both, with
#: decays large enough (wd >= 4% of 2 (1 + beta)/lr) that the +-2% test tells the formula from
#: the one without decay.
SETTINGS = [(0.1, 0.0, 0.0), (0.1, 0.9, 0.0), (0.05, 0.0, 3.0), (0.1, 0.5, 2.0), (0.2, 0.99, 0.5), (0.1, 0.9, 5e-4)]
STEPS = 3000


def _torch_sgd_converges(eigenvalue: float, lr: float, momentum: float, weight_decay: float) -> bool:
    """torch.optim.SGD on the quadratic eigenvalue/2 x^2 from x = 1: |x| < 1 after STEPS steps.
    At +-2% of the threshold the slowest mode's spectral radius is <= 0.995 (converged by
    ~1e-6 after 3000 steps) or >= 1.01 (grown by > 1e13)."""
    x = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([x], lr=lr, momentum=momentum, weight_decay=weight_decay)
    for _ in range(STEPS):
        opt.zero_grad()
        (0.5 * eigenvalue * x**2).sum().backward()
        opt.step()
    return bool(abs(float(x.detach()[0])) < 1.0)


@pytest.mark.parametrize(("lr", "momentum", "weight_decay"), SETTINGS)
def test_torch_sgd_converges_below_and_diverges_above_the_threshold(lr: float, momentum: float, weight_decay: float) -> None:
    threshold = eos_threshold(lr, momentum, weight_decay)
    # a few roundings in another operation order (and cancellation when wd is near 2(1+beta)/lr)
    assert threshold == pytest.approx(2 * (1 + momentum) / lr - weight_decay, rel=1e-13, abs=1e-13)
    assert _torch_sgd_converges(0.98 * threshold, lr, momentum, weight_decay)
    assert not _torch_sgd_converges(1.02 * threshold, lr, momentum, weight_decay)


def test_the_decay_term_moves_the_threshold_below_the_momentum_one() -> None:
    """lr 0.1, beta 0.5, wd 2: 2 (1 + beta)/lr = 30 would call an eigenvalue of 29 stable, but
    with the decay (h = 29 + 2 = 31 > 30) torch's SGD diverges: the threshold is 28."""
    assert eos_threshold(0.1, 0.5, 2.0) == pytest.approx(28.0, rel=1e-12)
    assert not _torch_sgd_converges(29.0, 0.1, 0.5, 2.0)
    assert _torch_sgd_converges(27.5, 0.1, 0.5, 2.0)


@pytest.mark.parametrize(("lr", "momentum", "weight_decay"), [(0.1, 0.0, 0.0), (0.1, 0.9, 0.0), (0.1, 0.5, 2.0)])
def test_genlab_training_diverges_exactly_above_the_threshold(lr: float, momentum: float, weight_decay: float) -> None:
    """genlab.empirical.train (weight decay in the objective, torch's SGD momentum) on a 1-D linear
    model f(x) = w x with two points x = c and targets 0: L = c^2 w^2 / 2, Hessian c^2."""
    from genlab.empirical import train
    from genlab.settings import TrainSettings

    threshold = eos_threshold(lr, momentum, weight_decay)
    for factor, diverges in ((0.98, False), (1.02, True)):
        model = torch.nn.Linear(1, 1, bias=False).to(torch.float64)
        with torch.no_grad():
            model.weight.fill_(1.0)
        c = float(np.sqrt(factor * threshold))
        settings = TrainSettings(optimizer="gd", lr=lr, momentum=momentum, weight_decay=weight_decay, steps=STEPS)
        run = train(model, np.full((2, 1), c), np.zeros((2, 1)), settings)
        assert run.diverged is diverges, factor


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0.0,), r"lr must be a finite float > 0; got 0\.0"),
        ((0.1, 1.0), r"momentum must be a float in \[0, 1\); got 1\.0"),
        ((0.1, 0.0, -1.0), r"weight_decay must be a finite float >= 0; got -1\.0"),
        ((0.1, True), r"momentum must be a float in \[0, 1\)"),
    ],
)
def test_bad_arguments_are_named(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        eos_threshold(*args)


def test_sympy_closed_form_is_the_same_function() -> None:
    """genlab.theory.landscape's expression "eos_threshold_momentum" (printed in paper captions)
    evaluates to the numeric threshold; "eos_threshold" is its beta = wd = 0 case, 2/eta.
    Same arithmetic up to rounding (rel 1e-13)."""
    import sympy as sp

    from genlab.theory import landscape

    general = landscape.expression("eos_threshold_momentum")
    symbols = {str(sym): sym for sym in general.free_symbols}
    assert set(symbols) == {"eta", "beta", "lambda_wd"}
    evaluate = sp.lambdify([symbols["eta"], symbols["beta"], symbols["lambda_wd"]], general, modules="math")
    rng = np.random.default_rng(0)
    for lr, momentum, weight_decay in zip(rng.uniform(1e-3, 1, 50), rng.uniform(0, 0.999, 50), rng.uniform(0, 10, 50)):
        assert evaluate(lr, momentum, weight_decay) == pytest.approx(eos_threshold(lr, momentum, weight_decay), rel=1e-13)
    assert sp.simplify(landscape.expression("eos_threshold") - general.subs({symbols["beta"]: 0, symbols["lambda_wd"]: 0})) == 0
    assert landscape.latex("eos_threshold") == r"\frac{2}{\eta}"
    assert landscape.latex("eos_threshold_momentum") == r"- \lambda_{wd} + \frac{2 \beta + 2}{\eta}"
    assert landscape.eos_threshold is eos_threshold


def _theory_ctx(settings, n: int = 32):
    from genlab.models import ArchSpec
    from genlab.theory import TheoryContext

    x, y = np.zeros((n, 3)), np.zeros((n, 1))
    return TheoryContext(spec=ArchSpec(), width=8, centered=False, settings=settings, x_train=x, y_train=y,
                         x_test=x, y_test=y, kind="regression", steps=np.array([0, 10]))


def _empirical_ctx(settings, steps: list[float], sharpness: list[float], n: int = 32):
    from genlab.empirical import EmpiricalContext, TrainingRun

    module = torch.nn.Linear(3, 1)
    x, y = np.zeros((n, 3)), np.zeros((n, 1))
    run = TrainingRun(steps=np.asarray(steps), train_loss=np.ones(len(steps)), test_loss=None, diverged=False,
                      final_step=int(steps[-1]),
                      measurements={"sharpness_step": np.asarray(steps), "sharpness": np.asarray(sharpness)})
    return EmpiricalContext(x, y, x, y, "regression", settings, module, module, run)


def test_theory_and_steps_to_eos_use_the_same_threshold() -> None:
    """lr 0.1, beta 0.9, wd 5: threshold 38 - 5 = 33. The theory predicts it for every sharpness
    quantity; on a synthetic sharpness curve 10, 20, 29, 30, 33, steps_to_eos is the first step
    within 10% of 33 (29.7 and up): step 30, not 20 (within 10% of 2/lr = 20) nor the step of
    38 (never reached)."""
    from genlab.settings import TrainSettings
    from genlab.empirical import landscape as empirical
    from genlab.theory import landscape as theory

    settings = TrainSettings(optimizer="gd", lr=0.1, momentum=0.9, weight_decay=5.0)
    threshold = eos_threshold(0.1, 0.9, 5.0)
    assert threshold == pytest.approx(33.0, rel=1e-12)
    for name in ("sharpness", "sharpness_max", "sharpness_late"):
        prediction = getattr(theory, name)(_theory_ctx(settings))
        assert prediction.value == pytest.approx(threshold, rel=1e-15) and prediction.kind == "value"
    ctx = _empirical_ctx(settings, [0, 10, 20, 30, 40], [10.0, 20.0, 29.0, 30.0, 33.0])
    assert empirical.steps_to_eos(ctx).value == 30.0
    never = _empirical_ctx(settings, [0, 10], [10.0, 20.0])
    assert empirical.steps_to_eos(never).value is None


def test_steps_to_eos_without_a_positive_threshold_is_none() -> None:
    """wd = 25 > 2/lr = 20: no non-negative sharpness is stable, so no step is 'at the edge'."""
    from genlab.settings import TrainSettings
    from genlab.empirical import landscape as empirical

    settings = TrainSettings(optimizer="gd", lr=0.1, weight_decay=25.0)
    assert eos_threshold(0.1, 0.0, 25.0) < 0
    assert empirical.steps_to_eos(_empirical_ctx(settings, [0, 10], [0.0, 5.0])).value is None
