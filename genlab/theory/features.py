"""Feature predictions of the kernel regime (mirrors genlab.empirical.features).

At infinite width in the NTK parametrization the hidden representation does not move during
training (Jacot et al. 2018; Yang & Hu 2021 call this the absence of feature learning), so:
``feature_cka`` = 1 between init and end, and the kernel after training is the kernel at init:
``init_kernel_test_mse`` and ``after_kernel_test_mse`` both equal the test MSE of ridgeless
regression with the analytic NTK. The effective rank of the features has no kernel-regime value
here (it is a property of the random features at init): ``feature_rank`` has no prediction.
``nngp_test_mse`` is the infinite-width limit of ridgeless regression with the readout-only
random-features model at init (see :func:`nngp_test_mse`: under muP with a readout bias,
regression with a free intercept). ``first_layer_alignment`` stays at its value for isotropic
random first-layer weights, exactly 1/d in expectation (by rotation invariance the d directions
of any orthonormal basis share ||A_1||_F^2 equally).
"""

from __future__ import annotations

import numpy as np

from genlab.kernels import kernel_regression
from genlab.quantities import Prediction
from genlab.theory._context import TheoryContext


def feature_cka(ctx: TheoryContext) -> Prediction:
    return Prediction("feature_cka", 1.0 if ctx.has_ntk_limit else None)


def _ntk_regression_mse(ctx: TheoryContext) -> float:
    predictions = kernel_regression(ctx.kernel("ntk", "train"), ctx.y_train, ctx.kernel("ntk", "test_train"))
    return float(np.mean(np.sum((predictions.reshape(ctx.y_test.shape) - ctx.y_test) ** 2, axis=1)))


def init_kernel_test_mse(ctx: TheoryContext) -> Prediction:
    return Prediction("init_kernel_test_mse", _ntk_regression_mse(ctx) if ctx.has_ntk_limit else None)


def after_kernel_test_mse(ctx: TheoryContext) -> Prediction:
    return Prediction("after_kernel_test_mse", _ntk_regression_mse(ctx) if ctx.has_ntk_limit else None)


def _free_intercept_regression(k_train_train: np.ndarray, y_train: np.ndarray, k_test_train: np.ndarray) -> np.ndarray:
    """Ridgeless regression with kernel ``G`` plus an unpenalised constant: the limit c -> inf
    of ridgeless regression with ``G + c 11^T``,

        f(X*) = 1 beta + G_*X G^+ (Y - 1 beta),   beta = 1^T G^+ Y / 1^T G^+ 1

    (Sherman-Morrison on ``(G + c 11^T)^{-1}``; the generalised-least-squares intercept of a
    GP with a vague prior on a constant mean, Rasmussen & Williams 2006, eq. 2.42). One
    :func:`genlab.kernels.kernel_regression` call gives ``G_*X G^+ [Y, 1]`` and ``1^T G^+ [Y, 1]``.
    ``y_train`` is (n, k); returns (m, k)."""
    n, k = y_train.shape
    stacked = kernel_regression(k_train_train, np.hstack([y_train, np.ones((n, 1))]), np.vstack([k_test_train, np.ones((1, n))]))
    beta = stacked[-1, :k] / stacked[-1, k]
    return stacked[:-1, :k] + (1.0 - stacked[:-1, k:]) * beta


def nngp_test_mse(ctx: TheoryContext) -> Prediction:
    """Test MSE of ridgeless regression with the readout kernel of the network at init, at
    infinite width (the empirical side: genlab.empirical.features.finite_nngp, ridgeless).

    NTK and standard parametrization: that kernel is the analytic NNGP
    ``K = w_std^2 E[phi phi'] + b_std^2`` (Lee et al. 2018). muP (Yang & Hu 2021): the hidden
    features are distributed as under NTK, but the readout's weight multiplier and init are
    ``w_std / sqrt(width)`` and ``1/sqrt(width)`` while its bias keeps ``b_std^2``, so the kernel
    is ``G / width + b_std^2`` with ``G = K - b_std^2`` -- it tends to the constant b_std^2. Ridgeless
    regression ignores the overall scale: it is regression with ``G + width * b_std^2 11^T``,
    whose limit is :func:`_free_intercept_regression` with ``G`` (a constant fitted without
    penalty). Without a readout bias (``b_std`` None or 0) that is plain regression with ``K``,
    as under NTK. The two differ when the targets have a mean the kernel does not fit cheaply.
    Assumes the random features at init (no training) and exact ridgeless solves: in muP the
    kernel's condition number grows like width, and kernel_regression falls back to a jitter
    ridge (with a warning) once it exceeds ~1/sqrt(n eps)."""
    k_train, k_test = ctx.kernel("nngp", "train"), ctx.kernel("nngp", "test_train")
    y_train = ctx.y_train.reshape(len(ctx.y_train), -1)
    bias = ctx.spec.b_std or 0.0
    if ctx.spec.parametrization == "mup" and bias > 0:
        predictions = _free_intercept_regression(k_train - bias**2, y_train, k_test - bias**2)
    else:
        predictions = kernel_regression(k_train, y_train, k_test)
    return Prediction("nngp_test_mse", float(np.mean(np.sum((predictions.reshape(ctx.y_test.shape) - ctx.y_test) ** 2, axis=1))))


def first_layer_alignment(ctx: TheoryContext) -> Prediction:
    d = int(np.prod(ctx.x_train.shape[1:]))
    return Prediction("first_layer_alignment", 1.0 / d if ctx.has_ntk_limit and ctx.spec.kind == "fc" and ctx.spec.depth else None)
