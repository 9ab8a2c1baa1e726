"""Feature-learning measurements (mirrors genlab.theory.features).

- ``feature_cka``: linear CKA (Kornblith et al. 2019) between the last hidden representation at
  init and after training, on the probe; 1 means the features did not move.
- ``feature_rank``: effective rank exp(H(p)) of the centred last hidden representation after
  training, p the normalised singular values (Roy & Vetterli 2007).
- ``init_kernel_test_mse`` / ``after_kernel_test_mse``: test MSE of ridgeless kernel regression
  with the empirical NTK at init / after training (the "after kernel" of Long 2021): a learned
  kernel that beats the initial one is evidence of feature learning.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from genlab.empirical._context import EmpiricalContext
from genlab.empirical.kernel_regime import mean_squared_error
from genlab.kernels import empirical_ntk, kernel_regression, linear_cka
from genlab.models import OutputScaled, SpecNetwork
from genlab.quantities import PROBE_SIZE, Measurement


def hidden_features(module: nn.Module, x: np.ndarray) -> np.ndarray:
    """The last hidden representation of a SpecNetwork (or OutputScaled around one), (n, features)."""
    net = module.module if isinstance(module, OutputScaled) else module
    if not isinstance(net, SpecNetwork):
        raise TypeError(f"hidden features need a SpecNetwork (ArchSpec.to_torch); got {type(net).__name__}")
    ref = next(iter(net.parameters()))
    with torch.no_grad():
        return net.features(torch.as_tensor(x).to(ref.device, ref.dtype)).cpu().numpy()


def effective_rank(features: np.ndarray) -> float:
    """exp(entropy of the normalised singular values) of the column-centred features."""
    centred = features - features.mean(axis=0, keepdims=True)
    s = np.linalg.svd(centred, compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def feature_cka(ctx: EmpiricalContext) -> Measurement:
    x = ctx.x_train[:PROBE_SIZE]
    if ctx.run.diverged:
        return Measurement("feature_cka", None)
    return Measurement("feature_cka", linear_cka(hidden_features(ctx.module0, x), hidden_features(ctx.module, x)))


def feature_rank(ctx: EmpiricalContext) -> Measurement:
    if ctx.run.diverged:
        return Measurement("feature_rank", None)
    return Measurement("feature_rank", effective_rank(hidden_features(ctx.module, ctx.x_train[:PROBE_SIZE])))


def _kernel_test_mse(ctx: EmpiricalContext, module: nn.Module) -> float:
    k_train = empirical_ntk(module, ctx.x_train)
    k_test = empirical_ntk(module, ctx.x_test, ctx.x_train)
    return mean_squared_error(kernel_regression(k_train, ctx.y_train, k_test), ctx.y_test)


def init_kernel_test_mse(ctx: EmpiricalContext) -> Measurement:
    return Measurement("init_kernel_test_mse", _kernel_test_mse(ctx, ctx.module0))


def after_kernel_test_mse(ctx: EmpiricalContext) -> Measurement:
    value = None if ctx.run.diverged else _kernel_test_mse(ctx, ctx.module)
    return Measurement("after_kernel_test_mse", value)
