"""Feature predictions of the kernel regime (mirrors genlab.empirical.features).

At infinite width in the NTK parametrization the hidden representation does not move during
training (Jacot et al. 2018; Yang & Hu 2021 call this the absence of feature learning), so:
``feature_cka`` = 1 between init and end, and the kernel after training is the kernel at init:
``init_kernel_test_mse`` and ``after_kernel_test_mse`` both equal the test MSE of ridgeless
regression with the analytic NTK. The effective rank of the features has no kernel-regime value
here (it is a property of the random features at init): ``feature_rank`` has no prediction.
``nngp_test_mse`` is ridgeless regression with the analytic NNGP (the infinite-width limit of
the readout-only random-features model). ``first_layer_alignment`` stays at its value for
isotropic random first-layer weights, exactly 1/d in expectation (by rotation invariance the d
directions of any orthonormal basis share ||A_1||_F^2 equally).
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


def nngp_test_mse(ctx: TheoryContext) -> Prediction:
    predictions = kernel_regression(ctx.kernel("nngp", "train"), ctx.y_train, ctx.kernel("nngp", "test_train"))
    return Prediction("nngp_test_mse", float(np.mean(np.sum((predictions.reshape(ctx.y_test.shape) - ctx.y_test) ** 2, axis=1))))


def first_layer_alignment(ctx: TheoryContext) -> Prediction:
    d = int(np.prod(ctx.x_train.shape[1:]))
    return Prediction("first_layer_alignment", 1.0 / d if ctx.has_ntk_limit and ctx.spec.kind == "fc" and ctx.spec.depth else None)
