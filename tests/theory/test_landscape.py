"""Landscape thresholds: closed forms against direct computation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from genlab.theory.landscape import (
    eos_threshold,
    expression,
    latex,
    sgd_max_nonuniformity,
    sgd_max_sharpness,
)


def test_eos_threshold_is_where_gd_on_a_quadratic_stops_converging() -> None:
    """GD on a/2 x^2 multiplies x by (1 - lr a) each step: it converges iff a < 2/lr."""
    lr = 0.37
    threshold = eos_threshold(lr)
    assert threshold == pytest.approx(2 / lr, rel=1e-13)  # a few roundings in another operation order
    for a, converges in ((0.99 * threshold, True), (1.01 * threshold, False)):
        x = 1.0
        for _ in range(2000):
            x -= lr * a * x
        assert (abs(x) < 1.0) is converges
    assert latex("eos_threshold") == r"\frac{2}{\eta}"


def test_sgd_stability_condition_equals_the_exact_second_moment_over_all_batches() -> None:
    """For per-sample losses h_i x^2 / 2 in 1-D, SGD without replacement multiplies E[x^2] by
    E_B[(1 - lr mean_{i in B} h_i)^2]; enumerating all C(n, B) batches must give Wu et al.'s
    (1 - lr a)^2 + lr^2 (n - B) / (B (n - 1)) s^2 with a = mean h, s^2 = var h. Exact (1e-12)."""
    rng = np.random.default_rng(0)
    h = rng.uniform(0.5, 3.0, size=7)
    n, lr = len(h), 0.3
    a, s = h.mean(), h.std()
    condition = expression("sgd_stability_condition")
    symbols = {str(sym): sym for sym in condition.free_symbols}
    for batch in (1, 2, 3, 7):
        exact = np.mean([(1 - lr * h[list(c)].mean()) ** 2 for c in itertools.combinations(range(n), batch)])
        formula = float(condition.subs({symbols["eta"]: lr, symbols["a"]: a, symbols["s"]: s, symbols["n"]: n, symbols["B"]: batch}))
        assert formula == pytest.approx(exact, rel=1e-12)


def test_sgd_max_sharpness_is_the_stability_boundary() -> None:
    lr, n, batch, s = 0.1, 100, 10, 5.0
    a_max = sgd_max_sharpness(lr, batch, n, s)
    variance = lr**2 * (n - batch) / (batch * (n - 1)) * s**2
    assert (1 - lr * a_max) ** 2 + variance == pytest.approx(1.0, rel=1e-12)
    assert a_max < eos_threshold(lr)  # noise makes SGD avoid minima GD could stay in
    assert sgd_max_sharpness(lr, n, n, s) == pytest.approx(2 / lr)  # full batch: no variance
    assert sgd_max_sharpness(lr, batch, n, 0.0) == pytest.approx(2 / lr)
    assert math.isnan(sgd_max_sharpness(lr, 1, n, 100.0))  # too non-uniform: nothing is stable


def test_sgd_max_nonuniformity_is_where_no_sharpness_is_stable() -> None:
    """Scanning a on a fine grid: the smallest stability factor over a is <= 1 exactly when
    s <= s_max (it is lr^2 (n-B)/(B(n-1)) s^2 at a = 1/lr), and at s = s_max the largest stable
    sharpness collapses to 1/lr."""
    lr, n, batch = 0.2, 50, 5
    s_max = sgd_max_nonuniformity(lr, batch, n)
    a = np.linspace(0.0, 2.0 / lr, 200001)
    for s, stable in ((0.99 * s_max, True), (1.01 * s_max, False)):
        factor = (1 - lr * a) ** 2 + lr**2 * (n - batch) / (batch * (n - 1)) * s**2
        assert bool(factor.min() <= 1.0) is stable
    assert sgd_max_sharpness(lr, batch, n, s_max) == pytest.approx(1 / lr, rel=1e-9)
    assert sgd_max_nonuniformity(lr, n, n) == math.inf
    assert latex("sgd_max_nonuniformity") == r"\frac{\sqrt{B} \sqrt{\frac{n - 1}{- B + n}}}{\eta}"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: eos_threshold(0.0), r"lr must be a finite float > 0; got 0\.0"),
        (lambda: sgd_max_sharpness(0.1, 0, 10, 1.0), r"batch and n must be ints with 1 <= batch <= n"),
        (lambda: sgd_max_sharpness(0.1, 2, 10, -1.0), r"nonuniformity must be a finite float >= 0"),
        (lambda: expression("nope"), r"name must be one of 'eos_threshold', 'eos_threshold_momentum'"),
    ],
)
def test_bad_arguments_are_named(call, match) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_predictions_use_the_linearly_scaled_learning_rate() -> None:
    """lr_scaling = "linear": the step actually taken is lr * B / base_batch = 0.2 here, so the
    thresholds are 2/0.2 and sqrt(B (n-1)/(n-B)) / 0.2."""
    from genlab.settings import TrainSettings
    from genlab.theory import landscape

    n, batch = 32, 16
    ctx = _ctx(TrainSettings(optimizer="sgd", lr=0.1, batch_size=batch, lr_scaling="linear", base_batch=8), n)
    assert landscape.sharpness(ctx).value == pytest.approx(2 / 0.2, rel=1e-12)
    assert landscape.nonuniformity(ctx).value == pytest.approx(np.sqrt(batch * (n - 1) / (n - batch)) / 0.2, rel=1e-12)

def _ctx(settings, n: int = 32):
    from genlab.models import ArchSpec
    from genlab.theory import TheoryContext

    x, y = np.zeros((n, 3)), np.zeros((n, 1))
    return TheoryContext(spec=ArchSpec(), width=8, centered=False, settings=settings, x_train=x, y_train=y,
                         x_test=x, y_test=y, kind="regression", steps=np.array([0, 10]))


def test_sharpness_threshold_is_the_plateau_value_under_gd_and_an_upper_bound_under_sgd() -> None:
    """Full-batch GD hovers at the threshold (a value); SGD with batch < n stays below it (an
    upper bound). An SGD batch that covers the training set is full-batch GD. Momentum and weight
    decay enter both: 2 (1 + 0.9)/0.1 - 5e-4 = 37.9995."""
    from genlab.settings import TrainSettings
    from genlab.theory import landscape

    n = 32
    for settings, kind in (
        (TrainSettings(optimizer="gd", lr=0.1, momentum=0.9, weight_decay=5e-4), "value"),
        (TrainSettings(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, batch_size=n), "value"),
        (TrainSettings(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, batch_size=8), "upper"),
    ):
        for name in ("sharpness", "sharpness_max", "sharpness_late"):
            prediction = getattr(landscape, name)(_ctx(settings, n))
            assert prediction.value == pytest.approx(37.9995, rel=1e-12) and prediction.kind == kind, (name, settings)
        assert landscape.sharpness(_ctx(settings, n)).curve.y == pytest.approx([37.9995] * 2, rel=1e-12)


def test_sgd_bounds_are_upper_bounds() -> None:
    """Wu et al.'s condition bounds the stability factor by 1 and the non-uniformity by s_max."""
    from genlab.settings import TrainSettings
    from genlab.theory import landscape

    ctx = _ctx(TrainSettings(optimizer="sgd", lr=0.1, batch_size=8))
    stability, nonuniformity = landscape.sgd_stability(ctx), landscape.nonuniformity(ctx)
    assert (stability.kind, nonuniformity.kind) == ("upper", "upper")
    assert stability.value == pytest.approx(1.0, rel=1e-15)
    assert nonuniformity.value == pytest.approx(np.sqrt(8 * 31 / 24) / 0.1, rel=1e-12)
    momentum = _ctx(TrainSettings(optimizer="sgd", lr=0.1, batch_size=8, momentum=0.9))
    assert landscape.sgd_stability(momentum).value is None and landscape.nonuniformity(momentum).value is None


def test_no_sharpness_prediction_for_other_optimizers_or_schedules() -> None:
    from genlab.settings import TrainSettings
    from genlab.theory import landscape

    for settings in (TrainSettings(optimizer="adam"), TrainSettings(optimizer="gd", schedule="cosine")):
        assert landscape.sharpness(_ctx(settings)).value is None
