"""Kernel-regime predictions (mirrors genlab.empirical.kernel_regime).

At infinite width in the NTK (or standard) parametrization, a network trained by gradient
descent on the MSE stays in its linearization: the NTK Theta is fixed, the weights move by a
vanishing fraction of their initial norm (see ``weight_change`` below), and the function follows
the linear ODE df/dt = -(1/n) Theta (f - y) (Jacot, Gabriel & Hongler 2018; Lee et al. 2019).
Predictions:

- losses and test outputs along GD at the measured steps, in closed form
  (genlab.kernels.gd_dynamics); for an uncentered network the initial function is
  f0 ~ GP(0, NNGP) and the predictions are expectations over it (Lee et al. 2019, eq. 16), with
  the spread of one draw for ``test_mse``;
- ``ntk_drift``, ``weight_change``, ``linearization_distance``: 0 at infinite width. Lee et al.
  2019 bound the finite-width corrections by O(width^-1/2); the NTK itself moves by O(width^-1)
  under GD for smooth activations (Dyer & Gur-Ari 2020; Huang & Yau 2020). ``weight_change`` is
  ||theta_T - theta_0|| / ||theta_0|| over all trained parameters together
  (genlab.empirical.kernel_regime): in NTK parametrization every parameter is N(0, 1) at init,
  so ||theta_0|| ~ sqrt(number of parameters), while ||Delta W||_F = O(1) in every layer (each
  layer's share of the O(1) NTK). The ratio therefore scales like width^-1/2 for depth 1 (d x
  width and width x k layers: ~ width parameters) and like width^-1 from depth 2 on, once a
  width x width hidden layer holds most parameters (per layer: input and readout layers
  width^-1/2, hidden layers width^-1). Measured (GD, gelu, n = 64, d = 8, 100 steps, widths
  256-4096 at depth 1 and 128-2048 at depth 2): slopes -0.51 and -0.99 (centred, alpha = 1),
  -0.54 and -1.01 (uncentred); per layer -0.52 (input), -0.99 (hidden), -0.48 (readout), with
  ||Delta W||_F flat (slopes |.| <= 0.06). The width_convergence study measures the slopes;
- ``alignment_*``: the centered alignment of the analytic NTK with the targets, the same at
  init and at the end because the kernel does not move.

Predictions are None where the theory says nothing: muP (no fixed NTK limit), and dynamics
under losses or optimizers without the GD closed form (see TheoryContext.follows_gd_closed_form).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import norm

from genlab.kernels import kernel_target_alignment
from genlab.quantities import PROBE_SIZE, Curve, Prediction
from genlab.theory._context import TheoryContext


def _predicts_dynamics(ctx: TheoryContext) -> bool:
    """The GD closed form applies and converges: beyond lr = 2n / lambda_max(Theta) the
    linearized infinite-width dynamics diverge, and the theory predicts no finite value."""
    return ctx.follows_gd_closed_form and not ctx.trajectory().diverged


def _dynamics(ctx: TheoryContext, name: str, value: Callable[[], float]) -> Prediction:
    return Prediction(name, value() if _predicts_dynamics(ctx) else None)


def train_loss(ctx: TheoryContext) -> Prediction:
    return _dynamics(ctx, "train_loss", lambda: float(ctx.trajectory().train_loss[-1]))


def test_loss(ctx: TheoryContext) -> Prediction:
    return _dynamics(ctx, "test_loss", lambda: float(ctx.trajectory().test_loss[-1]))


def train_loss_curve(ctx: TheoryContext) -> Prediction:
    if not _predicts_dynamics(ctx):
        return Prediction("train_loss_curve", None)
    traj = ctx.trajectory()
    return Prediction("train_loss_curve", float(traj.train_loss[-1]), Curve(traj.steps, traj.train_loss))


def test_loss_curve(ctx: TheoryContext) -> Prediction:
    if not _predicts_dynamics(ctx):
        return Prediction("test_loss_curve", None)
    traj = ctx.trajectory()
    return Prediction("test_loss_curve", float(traj.test_loss[-1]), Curve(traj.steps, traj.test_loss))


def test_mse(ctx: TheoryContext) -> Prediction:
    """E (1/m) sum_i ||f_T(x_i) - y_i||^2 = 2 * expected test loss at the final step.

    Uncentred network: the value is the expectation over f0 ~ GP(0, NNGP), and one seed is one
    draw of f0. The test outputs are then Gaussian, f_T(X*) ~ N(mu, C) per output column, with
    C the covariance of gd_dynamics' ``cov_test``, so the test MSE is a Gaussian quadratic form
    whose standard deviation is exact (genlab.kernels.squared_error_moments):
    spread = sqrt(2 k tr(C^2) + 4 sum_c r_c^T C r_c) / m with r = mu - y. Centred network
    (alpha): f0 = 0, the prediction is deterministic and the spread None.
    """
    if not _predicts_dynamics(ctx):
        return Prediction("test_mse", None)
    traj = ctx.trajectory()
    spread = None if traj.test_loss_std is None else 2 * traj.test_loss_std
    return Prediction("test_mse", float(2 * traj.test_loss[-1]), spread=spread)


#: Gauss-Hermite nodes for the one-hot expected error: the integrand prod_k Phi(a_k + z) is smooth
#: and bounded, and 96 nodes integrate it against phi(z) to ~1e-12 for the margins met here.
_HERMITE_NODES = 96


def expected_argmax_error(mu: np.ndarray, sigma: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per point, P(argmax_k f_k != label) for independent f_k ~ N(mu_k, sigma^2) (one variance
    per point, shared by the outputs, as under one kernel per output):
    1 - E_z prod_{k != c} Phi((mu_c - mu_k) / sigma + z), z ~ N(0, 1), by Gauss-Hermite
    quadrature; the indicator argmax(mu) != c where sigma = 0."""
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    rows = np.arange(len(mu))
    error = (np.argmax(mu, 1) != labels).astype(float)
    random = sigma > 0
    if np.any(random):
        nodes, weights = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
        weights = weights / np.sqrt(2 * np.pi)
        gaps = (mu[rows, labels][:, None] - mu) / np.where(random, sigma, 1.0)[:, None]  # (m, K)
        gaps[rows, labels] = np.inf  # the true class does not compete with itself
        correct = np.prod(norm.cdf(gaps[:, :, None] + nodes[None, None, :]), axis=1) @ weights
        error = np.where(random, 1.0 - correct, error)
    return error


def test_error(ctx: TheoryContext) -> Prediction:
    """Expected misclassification rate of the Gaussian output f_T(x) ~ N(mu, sigma^2) (sigma^2 the
    variance over the random initial function of an uncentred net, 0 for a centred one): for +-1
    targets E[error] = mean_i Phi(-y_i mu_i / sigma_i) (the indicator when sigma = 0); for one-hot
    targets the outputs are independent given the point (one kernel per output) and
    E[error] = mean_i P(argmax_k f_k(x_i) != c_i) (:func:`expected_argmax_error`)."""
    if ctx.kind != "classification" or not _predicts_dynamics(ctx):
        return Prediction("test_error", None)
    traj = ctx.trajectory()
    mu = traj.f_test[-1].reshape(len(ctx.y_test), -1)
    sigma = np.zeros(len(mu)) if traj.var_test is None else np.sqrt(np.clip(traj.var_test[-1], 0, None))
    if ctx.y_test.shape[1] > 1:
        return Prediction("test_error", float(np.mean(expected_argmax_error(mu, sigma, np.argmax(ctx.y_test, 1)))))
    margin = ctx.y_test[:, 0] * mu[:, 0]
    with np.errstate(divide="ignore"):
        error = np.where(sigma > 0, norm.cdf(-margin / np.where(sigma > 0, sigma, 1.0)), (margin <= 0).astype(float))
    return Prediction("test_error", float(np.mean(error)))


def _frozen(ctx: TheoryContext, name: str) -> Prediction:
    """0 at infinite width wherever an NTK limit exists."""
    return Prediction(name, 0.0 if ctx.has_ntk_limit else None)


def ntk_drift(ctx: TheoryContext) -> Prediction:
    return _frozen(ctx, "ntk_drift")


def weight_change(ctx: TheoryContext) -> Prediction:
    return _frozen(ctx, "weight_change")


def linearization_distance(ctx: TheoryContext) -> Prediction:
    return _frozen(ctx, "linearization_distance")


def _ntk_alignment(ctx: TheoryContext, name: str) -> Prediction:
    if not ctx.has_ntk_limit:
        return Prediction(name, None)
    kernel = ctx.kernel("ntk", "train")[:PROBE_SIZE, :PROBE_SIZE]
    return Prediction(name, kernel_target_alignment(kernel, ctx.y_train[:PROBE_SIZE], centered=True))


def alignment_init(ctx: TheoryContext) -> Prediction:
    return _ntk_alignment(ctx, "alignment_init")


def alignment_end(ctx: TheoryContext) -> Prediction:
    return _ntk_alignment(ctx, "alignment_end")
