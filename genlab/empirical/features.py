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


def _constant(features: np.ndarray) -> bool:
    """Whether every feature is constant over the samples (e.g. all ReLU units dead), up to the
    rounding of centring: largest centred entry <= n eps max |feature|."""
    centred = features - features.mean(axis=0, keepdims=True)
    scale = float(np.max(np.abs(features), initial=0.0))
    return float(np.max(np.abs(centred), initial=0.0)) <= len(features) * np.finfo(np.float64).eps * scale


def effective_rank(features: np.ndarray) -> float:
    """exp(entropy of the normalised singular values) of the column-centred features; 0 when
    every feature is constant over the samples (the rank of the zero matrix: the features
    collapsed)."""
    if _constant(features):
        return 0.0
    centred = features - features.mean(axis=0, keepdims=True)
    s = np.linalg.svd(centred, compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def feature_cka(ctx: EmpiricalContext) -> Measurement:
    """Linear CKA of the last hidden representation at init and after training, on the probe;
    None when either representation is constant over the probe (CKA divides by its variance)."""
    x = ctx.x_train[:PROBE_SIZE]
    if ctx.run.diverged:
        return Measurement("feature_cka", None)
    before, after = hidden_features(ctx.module0, x), hidden_features(ctx.module, x)
    if _constant(before) or _constant(after):
        return Measurement("feature_cka", None)
    return Measurement("feature_cka", linear_cka(before, after))


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


def finite_nngp(module: nn.Module, x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    """The NNGP of the network at its current weights, ``c_w^2 s_w^2 Phi(x1) Phi(x2)^T + c_b^2 s_b^2``
    (the readout's multipliers and init stds), ``(n1, n2)``. Under muP the weight term is
    O(1/width) against the bias' ``b_std^2`` (genlab.theory.features.nngp_test_mse predicts the
    ridgeless regression with it accordingly)."""
    from genlab.models._torch import layer_scales

    net = module.module if isinstance(module, OutputScaled) else module
    spec = net.spec
    phi1, phi2 = hidden_features(net, x1), hidden_features(net, x2)
    c_w, s_w, c_b, s_b = layer_scales(
        spec.parametrization, "readout" if spec.depth else "input", fan_in=phi1.shape[1],
        fan_out=spec.out_dim, width=net.width, w_std=spec.w_std, b_std=spec.b_std,
    )
    return (c_w * s_w) ** 2 * phi1 @ phi2.T + (0.0 if c_b is None else (c_b * s_b) ** 2)


def nngp_test_mse(ctx: EmpiricalContext) -> Measurement:
    k_train = finite_nngp(ctx.module0, ctx.x_train, ctx.x_train)
    k_test = finite_nngp(ctx.module0, ctx.x_test, ctx.x_train)
    return Measurement("nngp_test_mse", mean_squared_error(kernel_regression(k_train, ctx.y_train, k_test), ctx.y_test))


def target_direction(ctx: EmpiricalContext) -> np.ndarray | None:
    """The single-index direction w: from the task's meta, else estimated (module docstring)."""
    if ctx.meta.get("w") is not None:
        w = np.asarray(ctx.meta["w"], dtype=np.float64)
        return w / np.linalg.norm(w)
    x, y = ctx.x_test.reshape(len(ctx.x_test), -1), ctx.y_test
    if y.shape[1] != 1:
        return None
    d = x.shape[1]
    rows, cols = np.triu_indices(d)
    design = np.concatenate([np.ones((len(x), 1)), x, x[:, rows] * x[:, cols]], axis=1)
    if design.shape[0] <= design.shape[1]:
        return None
    coef = np.linalg.lstsq(design, y[:, 0], rcond=None)[0]
    quad = np.zeros((d, d))
    quad[rows, cols] = coef[1 + d:]
    quad = 0.5 * (quad + quad.T)
    eigenvalues, eigenvectors = np.linalg.eigh(quad)
    if np.max(np.abs(eigenvalues)) < 1e-8:
        return None
    return eigenvectors[:, int(np.argmax(np.abs(eigenvalues)))]


def first_layer_alignment(ctx: EmpiricalContext) -> Measurement:
    net = ctx.module.module if isinstance(ctx.module, OutputScaled) else ctx.module
    w = target_direction(ctx)
    if ctx.run.diverged or w is None or net.spec.kind != "fc" or net.spec.depth == 0:
        return Measurement("first_layer_alignment", None)
    layer = net.hidden[0]
    a = layer.weight.detach().cpu().double().numpy() * layer.weight_multiplier
    return Measurement("first_layer_alignment", float(np.sum((a @ w) ** 2) / np.sum(a**2)))
