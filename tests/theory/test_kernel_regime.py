"""Kernel-regime predictions: they exist only where the GD closed form applies and converges, and
their values are GD on the linearized infinite-width model (checked against references below)."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.settings import TrainSettings
from genlab.models import ArchSpec
from genlab.quantities import PROBE_SIZE
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


# ----------------------------------------------------------------------------- prediction values
#
# References written out here: the infinite-width NNGP and NTK of a one-hidden-layer erf network
# in closed form (Williams 1997's arcsine kernel; Jacot et al. 2018's recursion), gradient descent
# on the linearized model by iterating f <- f - (lr/n) Theta (f - y) step by step, the expectation
# over f0 ~ GP(0, NNGP) by carrying f as an affine map of f0 through the same iteration, and a
# Monte-Carlo average over explicit f0 draws. The contexts are built as genlab.study._cell does:
# steps = settings.measured_steps.

#: float64 round-off of the closed-form kernels (agree with neural-tangents to ~1e-15) carried
#: through <= 60 steps of a stable linear recursion and an eigendecomposition of a 30 x 30 matrix
#: of condition number <= 1e4: <= 1e-12 relative; 1e-9 leaves a wide margin.
DYNAMICS_RTOL = 1e-9
#: Monte-Carlo draws of f0 (fixed seed); the agreement is judged in standard errors of the mean.
MC_DRAWS = 20000
#: 5 standard errors: a correct prediction fails with probability ~6e-7 (and the seed is fixed).
MC_SIGMAS = 5.0

ERF = ArchSpec(depth=1, activation="erf", w_std=1.5, b_std=0.3)


def erf_kernels(spec: ArchSpec, width: int, x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(NNGP, NTK) of fc depth 1, erf, in closed form. Layer 1: S = sw^2 x.x'/d + sb^2. With
    a = 1 + 2 S(x, x), b = 1 + 2 S(x', x'): E[erf u erf v] = (2/pi) arcsin(2 S / sqrt(a b)),
    E[erf' u erf' v] = (4/pi) / sqrt(a b - 4 S^2). NNGP = sw^2 E[erf erf] + sb^2. NTK, "ntk"
    parametrization: NNGP + S sw^2 E[erf' erf']; "standard" (weights unscaled, so each weight term
    gains fan_in / sw^2 and each bias term 1 / sb^2): (x.x' + 1) sw^2 E[erf' erf'] + width E[erf erf] + 1."""
    assert spec.kind == "fc" and spec.depth == 1 and spec.activation == "erf" and spec.b_std
    sw, sb, d = spec.w_std, spec.b_std, x1.shape[1]
    s12 = sw**2 * x1 @ x2.T / d + sb**2
    a = 1 + 2 * (sw**2 * np.sum(x1**2, axis=1) / d + sb**2)[:, None]
    b = 1 + 2 * (sw**2 * np.sum(x2**2, axis=1) / d + sb**2)[None, :]
    e_phi = (2 / np.pi) * np.arcsin(2 * s12 / np.sqrt(a * b))
    e_dphi = (4 / np.pi) / np.sqrt(a * b - 4 * s12**2)
    nngp = sw**2 * e_phi + sb**2
    if spec.parametrization == "ntk":
        return nngp, nngp + s12 * sw**2 * e_dphi
    assert spec.parametrization == "standard"
    return nngp, (x1 @ x2.T + 1) * sw**2 * e_dphi + width * e_phi + 1


def _theory_context(spec: ArchSpec, width: int, settings: TrainSettings, x: np.ndarray, y: np.ndarray,
                    xt: np.ndarray, yt: np.ndarray, *, centered: bool, kind: str = "regression") -> TheoryContext:
    """As genlab.study._cell.run_cell builds it."""
    return TheoryContext(spec=spec, width=width, centered=centered, settings=settings, x_train=x, y_train=y,
                         x_test=xt, y_test=yt, kind=kind, steps=np.asarray(settings.measured_steps))


def _data(n: int = 30, m: int = 40, d: int = 4, *, classification: bool = False):
    rng = np.random.default_rng(3)
    x, xt = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    w = rng.normal(size=d)
    if classification:
        return x, np.sign(x @ w)[:, None], xt, np.sign(xt @ w)[:, None]
    target = lambda z: np.sin(z @ w)[:, None] + 0.5  # noqa: E731  (a non-centred target)
    return x, target(x), xt, target(xt)


def affine_gd(theta: np.ndarray, theta_star: np.ndarray, y: np.ndarray, lr: float, steps: np.ndarray,
              n_prior: int) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """GD on the linearized model, f_{s+1} = f_s - (lr/n) Theta (f_s - y) and
    f*_{s+1} = f*_s - (lr/n) Theta_* (f_s - y), iterated step by step with the outputs carried as
    affine maps of z = (f0(X), f0(X*)) in R^{n + m}: f_s = A_s z + a_s, f*_s = B_s z + b_s, from
    A_0 = [I, 0], B_0 = [0, I], a_0 = b_0 = 0. (A centred net has z = 0: the outputs are a_s, b_s.)
    Returns {step: (A, a, B, b)} at ``steps``."""
    n, m = len(y), theta_star.shape[0]
    a_map = np.eye(n, n + m) if n_prior else np.zeros((n, 0))
    b_map = np.eye(m, n + m, k=n) if n_prior else np.zeros((m, 0))
    a_vec, b_vec = np.zeros_like(y), np.zeros((m, y.shape[1]))
    out = {}
    for s in range(int(steps.max()) + 1):
        if s in steps:
            out[s] = (a_map.copy(), a_vec.copy(), b_map.copy(), b_vec.copy())
        residual_map, residual_vec = a_map, a_vec - y
        a_map, a_vec = a_map - lr / n * theta @ residual_map, a_vec - lr / n * theta @ residual_vec
        b_map, b_vec = b_map - lr / n * theta_star @ residual_map, b_vec - lr / n * theta_star @ residual_vec
    return out


@pytest.mark.parametrize(("parametrization", "lr"), [("ntk", 0.5), ("standard", 0.1)])
def test_centred_loss_curves_are_gd_on_the_linearized_model(parametrization: str, lr: float) -> None:
    """Centred (alpha) network, f0 = 0: the predicted train/test loss curves, final losses and test
    MSE are those of GD on the closed-form infinite-width NTK, iterated step by step. "standard"
    checks the width in its NTK (Theta grows ~ width, hence the small lr)."""
    spec = ArchSpec(depth=1, activation="erf", w_std=1.5, b_std=0.3, parametrization=parametrization)
    width = 64
    x, y, xt, yt = _data()
    settings = TrainSettings(lr=lr, steps=60, measure_every=10)
    ctx = _theory_context(spec, width, settings, x, y, xt, yt, centered=True)
    theta, theta_star = erf_kernels(spec, width, x, x)[1], erf_kernels(spec, width, xt, x)[1]
    steps = np.asarray(settings.measured_steps)
    assert lr * np.linalg.eigvalsh(theta).max() / len(x) < 2  # stable, so a prediction exists
    maps = affine_gd(theta, theta_star, y, lr, steps, n_prior=0)
    train = np.array([np.mean(np.sum((maps[s][1] - y) ** 2, axis=1)) / 2 for s in steps])
    test = np.array([np.mean(np.sum((maps[s][3] - yt) ** 2, axis=1)) / 2 for s in steps])
    assert train[-1] < 0.5 * train[0]  # it learned: the curve is not flat

    for name, expected in (("train_loss_curve", train), ("test_loss_curve", test)):
        prediction = getattr(theory, name)(ctx)
        np.testing.assert_array_equal(np.asarray(prediction.curve.x).astype(int), steps)
        np.testing.assert_allclose(prediction.curve.y, expected, rtol=DYNAMICS_RTOL)
        np.testing.assert_allclose(prediction.value, expected[-1], rtol=DYNAMICS_RTOL)
    np.testing.assert_allclose(theory.train_loss(ctx).value, train[-1], rtol=DYNAMICS_RTOL)
    np.testing.assert_allclose(theory.test_loss(ctx).value, test[-1], rtol=DYNAMICS_RTOL)
    np.testing.assert_allclose(theory.test_mse(ctx).value, 2 * test[-1], rtol=DYNAMICS_RTOL)


def test_uncentred_losses_are_expectations_over_the_random_initial_function() -> None:
    """f0 ~ GP(0, NNGP) jointly on train and test inputs (covariance C): with f_T = A z + a,
    E (1/2n) ||f_T - y||^2 = (1/2n) (||a - y||^2 + tr(A C A^T)), and likewise on the test set."""
    x, y, xt, yt = _data()
    settings = TrainSettings(lr=0.5, steps=60, measure_every=10)
    ctx = _theory_context(ERF, 64, settings, x, y, xt, yt, centered=False)
    both = np.concatenate([x, xt])
    nngp, ntk = erf_kernels(ERF, 64, both, both)
    n = len(x)
    steps = np.asarray(settings.measured_steps)
    maps = affine_gd(ntk[:n, :n], ntk[n:, :n], y, settings.lr, steps, n_prior=n)

    def expected_loss(linear: np.ndarray, offset: np.ndarray, target: np.ndarray) -> float:
        return float((np.sum((offset - target) ** 2) + np.trace(linear @ nngp @ linear.T)) / (2 * len(target)))

    train = np.array([expected_loss(maps[s][0], maps[s][1], y) for s in steps])
    test = np.array([expected_loss(maps[s][2], maps[s][3], yt) for s in steps])
    centred = _theory_context(ERF, 64, settings, x, y, xt, yt, centered=True)
    assert test[-1] > 1.05 * theory.test_loss(centred).value  # the f0 variance matters here
    np.testing.assert_allclose(theory.train_loss_curve(ctx).curve.y, train, rtol=DYNAMICS_RTOL)
    np.testing.assert_allclose(theory.test_loss_curve(ctx).curve.y, test, rtol=DYNAMICS_RTOL)
    np.testing.assert_allclose(theory.test_mse(ctx).value, 2 * test[-1], rtol=DYNAMICS_RTOL)


def test_uncentred_test_error_and_mse_against_monte_carlo_over_f0_draws() -> None:
    """Draw f0 on train and test inputs from the closed-form NNGP, run GD on the linearized model
    for each draw (all draws at once), and average the misclassification rate and the test MSE:
    the predictions are these expectations (and the spread of the test MSE, where predicted, its
    standard deviation over draws). The indicator of the mean output differs from the expected error
    by many standard errors here, so ignoring the f0 variance would fail."""
    x, y, xt, yt = _data(classification=True)
    settings = TrainSettings(lr=0.5, steps=20, measure_every=10)
    ctx = _theory_context(ERF, 64, settings, x, y, xt, yt, centered=False, kind="classification")
    both = np.concatenate([x, xt])
    nngp, ntk = erf_kernels(ERF, 64, both, both)
    n = len(x)
    eigenvalues, eigenvectors = np.linalg.eigh(nngp)
    root = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    z = root @ np.random.default_rng(0).standard_normal((len(both), MC_DRAWS))  # (n + m, draws)
    f, f_star = z[:n], z[n:]
    for _ in range(settings.steps):
        residual = f - y
        f, f_star = f - settings.lr / n * ntk[:n, :n] @ residual, f_star - settings.lr / n * ntk[n:, :n] @ residual
    errors = np.mean(np.sign(f_star) != np.sign(yt), axis=0)  # per draw
    mses = np.mean((f_star - yt) ** 2, axis=0)

    predicted_error = theory.test_error(ctx).value
    standard_error = errors.std(ddof=1) / np.sqrt(MC_DRAWS)
    assert abs(predicted_error - errors.mean()) < MC_SIGMAS * standard_error
    mean_only = np.mean(np.sign(f_star.mean(axis=1)) != np.sign(yt[:, 0]))
    assert abs(mean_only - errors.mean()) > 10 * MC_SIGMAS * standard_error
    prediction = theory.test_mse(ctx)
    assert abs(prediction.value - mses.mean()) < MC_SIGMAS * mses.std(ddof=1) / np.sqrt(MC_DRAWS)
    if prediction.spread is not None:  # checked wherever the spread is predicted
        # Standard error of a sample std s (delta method): sqrt((mu_4 - s^4) / N) / (2 s), with mu_4
        # the fourth central moment (the MSE is a Gaussian quadratic form, not Gaussian itself).
        std = mses.std(ddof=1)
        std_error = np.sqrt((np.mean((mses - mses.mean()) ** 4) - std**4) / MC_DRAWS) / (2 * std)
        assert abs(prediction.spread - std) < MC_SIGMAS * std_error


def test_uncentred_one_hot_test_error_is_the_expected_error_over_f0_draws() -> None:
    """Three classes: the outputs are independent GPs (one readout row each), GD acts on each
    with the same NTK, and one seed measures argmax over one draw. The prediction is the expected
    error over draws (Monte Carlo below), not the error of the mean predictor, which sits far
    below it here (found at 0.075 against E[error] = 0.288 before the fix)."""
    rng = np.random.default_rng(5)
    n, m, d, classes = 30, 40, 4, 3
    x, xt = rng.normal(size=(n, d)), rng.normal(size=(m, d))
    w = rng.normal(size=(d, classes))
    y, yt = np.eye(classes)[np.argmax(x @ w, 1)], np.eye(classes)[np.argmax(xt @ w, 1)]
    spec = ArchSpec(depth=1, activation="erf", w_std=1.5, b_std=0.3, out_dim=classes)
    settings = TrainSettings(lr=0.5, steps=20, measure_every=10)
    ctx = _theory_context(spec, 64, settings, x, y, xt, yt, centered=False, kind="classification")
    both = np.concatenate([x, xt])
    nngp, ntk = erf_kernels(spec, 64, both, both)
    eigenvalues, eigenvectors = np.linalg.eigh(nngp)
    root = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    z = np.einsum("ab,bkd->akd", root, np.random.default_rng(0).standard_normal((n + m, classes, MC_DRAWS)))
    f, f_star = z[:n], z[n:]
    for _ in range(settings.steps):
        residual = f - y[:, :, None]
        f = f - settings.lr / n * np.einsum("ij,jkd->ikd", ntk[:n, :n], residual)
        f_star = f_star - settings.lr / n * np.einsum("ij,jkd->ikd", ntk[n:, :n], residual)
    errors = np.mean(np.argmax(f_star, 1) != np.argmax(yt, 1)[:, None], axis=0)  # per draw
    standard_error = errors.std(ddof=1) / np.sqrt(MC_DRAWS)
    predicted = theory.test_error(ctx).value
    assert abs(predicted - errors.mean()) < MC_SIGMAS * standard_error
    mean_only = np.mean(np.argmax(f_star.mean(axis=2), 1) != np.argmax(yt, 1))
    assert abs(mean_only - errors.mean()) > 10 * MC_SIGMAS * standard_error


def test_expected_argmax_error_against_direct_sampling() -> None:
    """Per point, P(argmax != label) for independent Gaussians with one variance per point, by
    quadrature, against 200000 draws per point (5 standard errors); sigma = 0 gives the indicator."""
    rng = np.random.default_rng(11)
    mu, sigma, labels = rng.normal(size=(6, 4)), np.array([0.3, 1.0, 2.0, 0.7, 1.5, 0.0]), rng.integers(0, 4, 6)
    draws = 200_000
    samples = mu[:, :, None] + sigma[:, None, None] * rng.standard_normal((6, 4, draws))
    wrong = np.argmax(samples, 1) != labels[:, None]
    expected = theory.expected_argmax_error(mu, sigma, labels)
    for i in range(6):
        p = wrong[i].mean()
        # binomial standard error, floored at one draw's worth where the sample saw no exceptions
        tolerance = MC_SIGMAS * np.sqrt(max(p * (1 - p), 1 / draws) / draws)
        assert abs(expected[i] - p) < tolerance, (i, expected[i], p)
    assert expected[5] in (0.0, 1.0) and expected[5] == float(np.argmax(mu[5]) != labels[5])  # exact indicator


def test_centred_test_error_is_the_sign_error_of_the_gd_outputs() -> None:
    """f0 = 0 makes f_T deterministic: the error is the fraction of test signs GD gets wrong."""
    x, y, xt, yt = _data(classification=True)
    settings = TrainSettings(lr=0.5, steps=20, measure_every=10)
    ctx = _theory_context(ERF, 64, settings, x, y, xt, yt, centered=True, kind="classification")
    theta, theta_star = erf_kernels(ERF, 64, x, x)[1], erf_kernels(ERF, 64, xt, x)[1]
    b = affine_gd(theta, theta_star, y, settings.lr, np.array([settings.steps]), n_prior=0)[settings.steps][3]
    expected = float(np.mean(np.sign(b) != np.sign(yt)))
    assert 0 < expected < 0.5
    np.testing.assert_allclose(theory.test_error(ctx).value, expected, rtol=DYNAMICS_RTOL)


def centered_alignment(kernel: np.ndarray, y: np.ndarray) -> float:
    """<H K H, H y y^T H>_F / (||H K H||_F ||H y y^T H||_F), H = I - 11^T/n (Cortes et al. 2012)."""
    n = kernel.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    kc, lc = h @ kernel @ h, h @ (y @ y.T) @ h
    return float(np.sum(kc * lc) / (np.linalg.norm(kc) * np.linalg.norm(lc)))


def test_alignment_is_the_centred_alignment_of_the_analytic_ntk_on_the_probe() -> None:
    """The same at init and end (the kernel does not move), on the first PROBE_SIZE training points
    (n_train > PROBE_SIZE: the whole set gives another value)."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(PROBE_SIZE + 16, 4))
    y = np.sin(x[:, :1]) + 0.3 * x[:, 1:2] ** 2
    ctx = _theory_context(ERF, 64, TrainSettings(lr=0.5, steps=10), x, y, x[:5], y[:5], centered=True)
    ntk = erf_kernels(ERF, 64, x, x)[1]
    expected = centered_alignment(ntk[:PROBE_SIZE, :PROBE_SIZE], y[:PROBE_SIZE])
    assert abs(centered_alignment(ntk, y) - expected) > 1e-4
    np.testing.assert_allclose(theory.alignment_init(ctx).value, expected, rtol=DYNAMICS_RTOL)
    np.testing.assert_allclose(theory.alignment_end(ctx).value, expected, rtol=DYNAMICS_RTOL)


def test_mup_has_no_kernel_regime_prediction() -> None:
    """muP has no fixed NTK limit (Yang & Hu 2021): every kernel-regime prediction is None, while
    the NTK parametrization predicts a frozen kernel (0)."""
    x, y, xt, yt = _data()
    settings = TrainSettings(lr=0.5, steps=10)
    mup = _theory_context(ArchSpec(depth=1, parametrization="mup", b_std=0.1), 64, settings, x, y, xt, yt, centered=True)
    ntk = _theory_context(ERF, 64, settings, x, y, xt, yt, centered=True)
    for name in ("train_loss", "test_loss", "train_loss_curve", "test_loss_curve", "test_mse", "ntk_drift",
                 "weight_change", "linearization_distance", "alignment_init", "alignment_end"):
        assert getattr(theory, name)(mup).value is None, name
    for name in ("ntk_drift", "weight_change", "linearization_distance"):
        assert getattr(theory, name)(ntk).value == 0.0, name  # exactly the literal 0 of the limit
