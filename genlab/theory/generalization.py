"""Generalization predictions (mirrors genlab.empirical.generalization).

- ``learning_curve_mse``: the spectral learning curve of ridgeless kernel regression with the
  spec's analytic NTK (Bordelon, Canatar & Pehlevan 2020; Canatar, Bordelon & Pehlevan 2021),
  evaluated at P = n_train: the expected test MSE against the clean test targets over draws of
  the P training samples (see genlab.kernels._learning_curves). The kernel's eigenvalues η_k
  and the target's powers c_k² are the Nyström estimates on the test inputs (eigenvalues of
  K_test/m and ``(v_kᵀ y_test)²/m``, m = n_test, independent of n_train); target power on
  eigenvalues below 1e-10 of the largest (a kernel of finite rank, e.g. the linear kernel of a
  depth-0 network, rank d) cannot be learned and acts as noise. The label-noise variance σ² is
  ``meta["params"]["noise"]**2`` when the context carries the task's meta, else 0 (clean
  training labels). No prediction for muP (no fixed NTK) or where P ≥ m (the Nyström spectrum
  from m points cannot resolve the modes P samples learn).

The bounds and measures of trained networks (spectral margin bound, path-norm, distance to
init, PAC-Bayes) are computed from the trained weights only: they are measurements, listed
with the generalization gap they are ranked against (genlab.empirical.generalization).
"""

from __future__ import annotations

import numpy as np

from genlab.kernels._learning_curves import learning_curve, spectral_inputs
from genlab.quantities import Prediction
from genlab.theory._context import TheoryContext


def label_noise_variance(meta: dict) -> float:
    """σ² of the training labels from a task's meta (``params.noise`` is a standard deviation
    for the regression tasks); 0 when the meta is absent."""
    params = meta.get("params", {}) if meta else {}
    if meta and meta.get("kind") == "regression":
        return float(params.get("noise", 0.0)) ** 2
    return 0.0


def learning_curve_mse(ctx: TheoryContext) -> Prediction:
    n, m = len(ctx.x_train), len(ctx.x_test)
    if not ctx.has_ntk_limit or n >= m:
        return Prediction("learning_curve_mse", None)
    from genlab.kernels import analytic_kernel

    k_test = ctx.cached(
        "ntk/test_test", lambda: analytic_kernel(ctx.spec, ctx.x_test, get="ntk", width=ctx.width)
    )
    eigenvalues, power = ctx.cached("learning_curve/spectrum", lambda: spectral_inputs(k_test, ctx.y_test))
    point = learning_curve(eigenvalues, power, n, noise=label_noise_variance(ctx.meta))[0]
    return Prediction("learning_curve_mse", point.test_error if np.isfinite(point.test_error) else None)
