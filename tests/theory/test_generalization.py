"""Spectral learning curves (genlab.kernels._learning_curves) against independent references:
Monte Carlo kernel regression over many draws, the closed forms of least squares, and the
Bayes-optimality of the GP posterior mean (optimal ridge = noise variance)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from genlab.kernels._learning_curves import learning_curve, solve_kappa, spectral_inputs

DRAWS = 30


def simulate(eta: np.ndarray, w: np.ndarray, n: int, rng: np.random.Generator, *, noise: float = 0.0,
             ridge: float = 0.0, draws: int = DRAWS) -> tuple[float, float]:
    """Kernel ridge regression with the linear kernel K = X X^T on Gaussian features
    x ~ N(0, diag(eta)) (the kernel's Mercer eigenvalues are exactly eta, eigenfunctions
    x_k / sqrt(eta_k)), target w.x, labels noisy with variance ``noise``. The test error is the
    exact population error (beta_hat - w)^T diag(eta) (beta_hat - w): no test-set sampling.
    Returns the mean over draws and its standard error."""
    errors = []
    for _ in range(draws):
        x = rng.standard_normal((n, eta.size)) * np.sqrt(eta)
        y = x @ w + np.sqrt(noise) * rng.standard_normal(n)
        k = x @ x.T
        alpha = np.linalg.solve(k + ridge * np.eye(n), y) if ridge > 0 else np.linalg.pinv(k) @ y
        beta = x.T @ alpha
        errors.append(float(np.sum(eta * (beta - w) ** 2)))
    return float(np.mean(errors)), float(np.std(errors) / np.sqrt(draws))


def test_kappa_solves_the_self_consistent_equation() -> None:
    eta = np.arange(1, 101, dtype=float) ** -2.0
    for n, ridge in ((5, 0.0), (50, 0.0), (20, 1e-3), (500, 1e-2)):
        kappa = solve_kappa(eta, n, ridge)
        assert kappa > 0
        residual = ridge + kappa * np.sum(eta / (n * eta + kappa)) - kappa
        assert abs(residual) < 1e-10 * kappa
    assert solve_kappa(eta, 100, 0.0) == 0.0  # ridgeless, P >= rank: kappa = 0


def test_theory_matches_kernel_regression_over_draws(rng: np.random.Generator) -> None:
    """Power-law spectrum eta_k ~ k^-1.5 (D = 200 modes), random target: the theory against the
    mean of 30 draws at P = 10, 40, 160. Measured (seeded): relative deviations -5%, +2%, +2%
    with standard errors of 2-3%; the theory is asymptotic in P, so 12% allows its O(1/P)
    finite-size correction at P = 10 plus 3 standard errors."""
    eta = np.arange(1, 201, dtype=float) ** -1.5
    eta /= eta.sum()
    w = rng.standard_normal(eta.size)
    for n in (10, 40, 160):
        theory = learning_curve(eta, eta * w**2, n)[0].test_error
        mean, stderr = simulate(eta, w, n, rng)
        assert abs(mean / theory - 1) < 0.12, (n, theory, mean, stderr)


def test_ridge_and_noise_match_simulation(rng: np.random.Generator) -> None:
    """With ridge 0.05 and noise variance 0.1 the same agreement holds (measured within 5%)."""
    eta = np.arange(1, 101, dtype=float) ** -1.0
    eta /= eta.sum()
    w = rng.standard_normal(eta.size)
    for n in (20, 80, 320):
        theory = learning_curve(eta, eta * w**2, n, noise=0.1, ridge=0.05)[0].test_error
        mean, _ = simulate(eta, w, n, rng, noise=0.1, ridge=0.05)
        assert abs(mean / theory - 1) < 0.12, (n, theory, mean)


def test_noisy_double_descent_peak_at_rank(rng: np.random.Generator) -> None:
    """N = 50 isotropic features, noise variance 0.25, ridgeless: the theory diverges at P = N
    and is finite on both sides; the simulation peaks there too (measured 0.74 at P = 25, 2.9 at
    P = 55, 0.25 at P = 100). Far from the peak the theory equals least squares' closed forms:
    P > N: E_g = sigma^2 N / (P - N) (the large-N limit of N / (P - N - 1)); P < N: the bias
    (1 - P/N) ||w||^2 / N-scaled plus the variance sigma^2 P / (N - P)."""
    n_features, noise = 50, 0.25
    eta = np.full(n_features, 1.0 / n_features)
    w = rng.standard_normal(n_features)
    w /= np.sqrt(np.sum(eta * w**2))  # unit target power
    curve = {p.n: p.test_error for p in learning_curve(eta, eta * w**2, [25, 40, 50, 60, 100, 200], noise=noise)}
    assert curve[50] == np.inf
    assert curve[100] == pytest.approx(noise * n_features / (100 - n_features), rel=1e-9)
    assert curve[25] == pytest.approx((1 - 25 / n_features) + noise * 25 / (n_features - 25), rel=1e-9)
    measured = {n: simulate(eta, w, n, rng, noise=noise)[0] for n in (25, 45, 55, 100)}
    assert measured[45] > 2 * measured[25] and measured[55] > 2 * measured[100]
    # Away from the peak, within 12% of the theory (least squares' finite-N correction at 100: 2%).
    for n in (25, 100):
        assert abs(measured[n] / curve[n] - 1) < 0.12


@pytest.mark.parametrize("n", [5, 30, 200])
def test_optimal_ridge_is_the_noise_variance(n: int) -> None:
    """A target drawn from the kernel's GP prior has c_k^2 = eta_k on average: kernel ridge
    regression is then the posterior mean, Bayes-optimal at ridge = sigma^2 (Canatar et al. 2021).
    The theory's minimum over the ridge, found by scipy's bounded scalar minimisation in log
    ridge, lands there to 1e-3 relative (the optimiser's tolerance)."""
    eta = np.arange(1, 301, dtype=float) ** -1.3
    noise = 0.2
    result = minimize_scalar(
        lambda log_ridge: learning_curve(eta, eta, n, noise=noise, ridge=float(np.exp(log_ridge)))[0].test_error,
        bounds=(np.log(1e-4), np.log(10.0)), method="bounded", options={"xatol": 1e-6},
    )
    assert np.exp(result.x) == pytest.approx(noise, rel=1e-3)


def test_unlearnable_power_acts_as_noise() -> None:
    """Power on zero eigenvalues enters like label noise (amplified by 1/(1-gamma)), plus itself."""
    eta = np.array([0.5, 0.3, 0.2, 0.0])
    with_unlearnable = learning_curve(eta, np.array([0.1, 0.1, 0.1, 0.3]), 2)[0]
    as_noise = learning_curve(eta[:3], np.array([0.1, 0.1, 0.1]), 2, noise=0.3)[0]
    assert with_unlearnable.test_error == pytest.approx(as_noise.test_error + 0.3, rel=1e-12)


def test_spectral_inputs_are_nystrom_estimates(rng: np.random.Generator) -> None:
    """For a linear kernel on m Gaussian samples the Nystrom eigenvalues of K/m approach the
    covariance eigenvalues (sampling error ~ sqrt(2/m) per eigenvalue plus a d/m spread, d = 5 with eigenvalue
    ratio 16; 10% at m = 1500 measured), the rank-d tail is zeroed, and the target powers sum to mean(y^2) (Parseval)."""
    eta = np.array([1.0, 0.5, 0.25, 0.125, 0.0625])
    x = rng.standard_normal((1500, 5)) * np.sqrt(eta)
    y = x @ np.ones(5)
    eigenvalues, power = spectral_inputs(x @ x.T, y)
    np.testing.assert_allclose(eigenvalues[:5], eta, rtol=0.2)
    assert np.all(eigenvalues[5:] == 0.0)
    assert power.sum() == pytest.approx(np.mean(y**2), rel=1e-10)
    assert power[5:].sum() < 1e-10 * power.sum()


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="noise"):
        learning_curve([1.0], [1.0], 3, noise=-1.0)
    with pytest.raises(ValueError, match="n must"):
        learning_curve([1.0], [1.0], 0)
    with pytest.raises(ValueError, match="one length"):
        learning_curve([1.0, 0.5], [1.0], 3)


def test_study_prediction_with_label_noise_matches_least_squares_draws() -> None:
    """The study's theory (genlab.theory.generalization.learning_curve_mse: analytic NTK of a
    depth-0 net, i.e. the linear kernel, Nystrom on 1000 test inputs, sigma^2 from the task's
    meta) against the mean test MSE of min-norm least squares (numpy lstsq, the ridgeless
    regression of that kernel) over 20 task draws with noise 0.5 in d = 20. Measured: +11%, +17%,
    +8% at P = 10, 60, 120 (theory 0.745, 0.125 = sigma^2 d / (P - d), 0.050; the draws share
    their seeds across P, so the deviations are correlated; one mean of 20 draws has a standard
    error of ~7%); tolerance 25% = 3 standard errors + the finite-d
    correction d/(P-d-1) vs d/(P-d)."""
    from genlab.settings import TrainSettings
    from genlab.models import ArchSpec
    from genlab.tasks import make_task
    from genlab.theory import TheoryContext
    from genlab.theory.generalization import learning_curve_mse

    spec = ArchSpec(kind="fc", depth=0, activation="identity")
    for n in (10, 60, 120):
        errors, predictions = [], []
        for seed in range(20):
            task = make_task("linear_regression", seed=seed, n_train=n, n_test=1000, d=20, noise=0.5)
            beta = np.linalg.lstsq(task.x_train, task.y_train, rcond=None)[0]
            errors.append(float(np.mean((task.x_test @ beta - task.y_test) ** 2)))
            if seed < 2:
                ctx = TheoryContext(spec=spec, width=1, centered=False, settings=TrainSettings(), x_train=task.x_train,
                                    y_train=task.y_train, x_test=task.x_test, y_test=task.y_test, kind="regression",
                                    steps=np.array([0]), meta=task.meta)
                predictions.append(learning_curve_mse(ctx).value)
        assert abs(np.mean(errors) / np.mean(predictions) - 1) < 0.25, (n, np.mean(errors), predictions)
