"""Empirical NTK of a torch module: ``Theta(x, x') = sum_theta <df/dtheta(x), df/dtheta(x')>``.

The Gram matrix is a sum over parameter tensors. For the weight of a linear or convolutional
layer ``h_p = c_w W a_p (+ c_b b)`` (position ``p``; a linear layer on a plain vector has one
position, a convolution's ``a_p`` is the input patch under the filter), the chain rule gives
``df_o/dW = c_w sum_p g_{o,p} a_p^T`` with ``g_{o,p} = df_o/dh_p`` the backward signal, so

    Theta_W(x, x') = c_w^2 sum_o sum_{p,q} (g_{o,p}(x) . g_{o,q}(x')) (a_p(x) . a_q(x'))     (1)
    Theta_b(x, x') = c_b^2 sum_o (sum_p g_{o,p}(x)) . (sum_q g_{o,q}(x'))

(the per-layer factorisation used by neural-tangents' STRUCTURED_DERIVATIVES, Novak et al. 2022,
"Fast finite width neural tangent kernel"). Each layer's Gram is formed either from (1)
directly (``factored``: no Jacobian at all, cost ~ n^2 P^2 (K out + in)) or from the per-sample
weight gradients ``J_o(x) = c_w sum_p g_{o,p} a_p^T`` (``materialized``: cost ~ n K P out in +
n^2 K out in), whichever is cheaper for that layer's shape. ``a`` and ``g`` come from one forward
pass with hooks and one backward pass per output. Parameters of any other layer are handled by
the general fallback: per-sample Jacobians with ``torch.func`` (``vmap(jacrev)``) and their
contraction.

Rows and columns are processed in blocks so that the memory stays bounded for large n.
The module must treat samples independently (no BatchNorm in training mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, jacrev, vmap

from genlab._arrays import as_numpy
from genlab.models._spec import check_positive_int
from genlab.models._torch import ScaledConv, ScaledLinear

METHODS = ("auto", "jacobian")

#: Bytes that the per-block features (and a block's Jacobian) may take; sets the default block.
FEATURE_BYTE_BUDGET = 2**29


@dataclass
class _LayerFeatures:
    """What one recognised layer contributes for a block of samples.

    ``a``: (n, P, in) layer inputs / patches; ``g``: (K, n, P, out) backward signals;
    ``jw``: (K, n, out*in) per-sample weight gradients (materialized mode) or None;
    ``gb``: (K, n, out) bias gradients or None.
    """

    a: torch.Tensor | None
    g: torch.Tensor | None
    jw: torch.Tensor | None
    gb: torch.Tensor | None
    transient_bytes: int = 0  # inputs/patches and backward signals held while forming jw
    bias_scale: float = 0.0  # one position: Theta_b = bias_scale * g g^T, folded into the weight term


class _Layer:
    """A linear or convolutional layer whose weight/bias Gram terms are computed from (1)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.weight = module.weight.requires_grad
        self.bias = module.bias is not None and module.bias.requires_grad
        self.c_w = float(getattr(module, "weight_multiplier", 1.0))
        c_b = getattr(module, "bias_multiplier", 1.0)
        self.c_b = 0.0 if c_b is None else float(c_b)
        self.materialize: bool | None = None  # chosen from the first block's shapes

    def owned(self) -> list[nn.Parameter]:
        return [p for p, used in ((self.module.weight, self.weight), (self.module.bias, self.bias)) if used]

    def rows(self, inp: torch.Tensor, out: torch.Tensor, grads: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-position inputs (n, P, in) and backward signals (K, n, P, out) of one call."""
        n = inp.shape[0]
        m = self.module
        if isinstance(m, (nn.Linear, ScaledLinear)):
            a = inp.reshape(n, -1, inp.shape[-1])
            g = torch.stack([gr.reshape(n, -1, gr.shape[-1]) for gr in grads])
            return a, g
        if isinstance(m, ScaledConv):
            padded, kernel, stride, dilation = m.pad(inp), (m.filter_size,) * m.spatial_dims, m.stride, 1
        else:
            mode = "constant" if m.padding_mode == "zeros" else m.padding_mode
            padded = F.pad(inp, m._reversed_padding_repeated_twice, mode=mode)
            kernel, stride, dilation = m.kernel_size, m.stride, m.dilation
        a = _patches(padded, kernel, stride, dilation)  # (n, P, C_in * prod(kernel))
        g = torch.stack([gr.flatten(2).transpose(1, 2) for gr in grads])  # (K, n, P, C_out)
        return a, g


def _patches(x: torch.Tensor, kernel: Any, stride: Any, dilation: Any) -> torch.Tensor:
    """Input patches (n, P, C * prod(kernel)) under each output position of a VALID convolution."""
    nd = x.ndim - 2
    as_pair = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * nd  # noqa: E731
    kernel, stride, dilation = as_pair(kernel), as_pair(stride), as_pair(dilation)
    if nd == 1:
        x, kernel, stride, dilation = x.unsqueeze(2), (1,) + kernel, (1,) + stride, (1,) + dilation
    cols = F.unfold(x, kernel_size=kernel, dilation=dilation, stride=stride)
    return cols.transpose(1, 2)


def _recognised(module: nn.Module) -> bool:
    if isinstance(module, (ScaledLinear, ScaledConv, nn.Linear)):
        return True
    return isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.groups == 1


def _check_module(module: Any) -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm) and sub.training:
            raise ValueError(
                "module has BatchNorm in training mode, which couples the samples of a batch: "
                "call module.eval() first (the empirical NTK is defined per pair of samples)"
            )


def empirical_ntk(
    module: nn.Module,
    x1: Any,
    x2: Any = None,
    *,
    block_size: int | None = None,
    per_output: bool = False,
    method: str = "auto",
) -> np.ndarray:
    """The empirical NTK Gram matrix of ``module`` at its current parameters.

    Args:
        module: maps ``(n, *input_shape)`` to ``(n, K)`` (or ``(n,)``, K = 1), sample by sample.
            Only parameters with ``requires_grad`` count.
        x1: inputs ``(n1, *input_shape)``; numpy, torch or jax.
        x2: inputs ``(n2, *input_shape)``; None means ``x1``.
        block_size: samples per block (default: from a memory budget of the per-block features).
        per_output: False gives the trace over outputs, ``sum_o <df_o(x), df_o(x')>`` (the sum,
            not the mean), shape ``(n1, n2)``; True gives every pair of outputs,
            ``(n1, n2, K, K)``.
        method: "auto" (factored products for linear/conv layers, torch.func Jacobians for any
            other parameter) or "jacobian" (torch.func Jacobian contraction for every parameter:
            the general reference).

    Returns:
        numpy array in the module's parameter dtype.
    """
    _check_module(module)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    trainable = [p for p in module.parameters() if p.requires_grad]
    if not trainable:
        raise ValueError("module has no parameter with requires_grad=True: its NTK is zero")
    ref = trainable[0]
    a_in = _as_batch(x1, "x1", ref)
    b_in = None if x2 is None else _as_batch(x2, "x2", ref)
    if b_in is not None and b_in.shape[1:] != a_in.shape[1:]:
        raise ValueError(f"x2 must have per-sample shape {tuple(a_in.shape[1:])} to match x1; got {tuple(b_in.shape[1:])}")

    layers = [_Layer(m) for m in module.modules() if _recognised(m)] if method == "auto" else []
    layers = [layer for layer in layers if layer.weight or layer.bias]
    owned = {id(p) for layer in layers for p in layer.owned()}
    fallback = {name: p for name, p in module.named_parameters() if p.requires_grad and id(p) not in owned}
    if block_size is not None:
        check_positive_int(block_size, "block_size")
    with torch.enable_grad():
        features = _BlockFeatures(module, layers, fallback, _num_outputs(module, a_in[:1]))
        per_sample_bytes, positions = _per_sample_cost(features, a_in)
        block = block_size or _default_block(per_sample_bytes, positions, a_in.element_size())
        n2 = a_in.shape[0] if b_in is None else b_in.shape[0]
        cache_columns = n2 * per_sample_bytes <= 4 * FEATURE_BYTE_BUDGET
        gram = _blocked_gram(features, a_in, b_in, block, per_output, cache_columns)
    return gram.cpu().numpy()


def _as_batch(x: Any, name: str, ref: torch.Tensor) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(as_numpy(x, name)))
    if t.ndim < 1 or t.shape[0] < 1:
        raise ValueError(f"{name} must have shape (n, *input_shape) with n >= 1; got {tuple(t.shape)}")
    return t.detach().to(dtype=ref.dtype, device=ref.device)


def _num_outputs(module: nn.Module, x: torch.Tensor) -> int:
    with torch.no_grad():
        out = module(x)
    return int(np.prod(out.shape[1:])) if out.ndim > 1 else 1


def _per_sample_cost(features: "_BlockFeatures", x: torch.Tensor) -> tuple[int, int]:
    """Bytes of one sample's features, and the largest number of positions of a factored layer
    (its Gram intermediates hold (n P)^2 entries per block); measured on one sample."""
    layer_features, jac = features(x[:1])
    tensors = [t for f in layer_features for t in (f.a, f.g, f.jw, f.gb) if t is not None]
    if jac is not None:
        tensors.append(jac)
    positions = max((f.a.shape[1] for f in layer_features if f.a is not None), default=1)
    transient = max((f.transient_bytes for f in layer_features), default=0)
    return sum(t.numel() * t.element_size() for t in tensors) + transient, positions


def _default_block(per_sample_bytes: int, positions: int, itemsize: int) -> int:
    """Largest block whose features and factored intermediates fit ``FEATURE_BYTE_BUDGET``."""
    by_features = FEATURE_BYTE_BUDGET // max(per_sample_bytes, 1)
    by_intermediate = math.isqrt(FEATURE_BYTE_BUDGET // (4 * itemsize)) // positions
    return int(np.clip(min(by_features, by_intermediate), 1, 4096))


class _BlockFeatures:
    """Computes, for a block of samples, every layer's (a, g) or J and the fallback Jacobian."""

    def __init__(self, module: nn.Module, layers: list[_Layer], fallback: dict[str, nn.Parameter], num_outputs: int):
        self.module = module
        self.layers = layers
        self.fallback = fallback
        self.num_outputs = num_outputs

    def __call__(self, x: torch.Tensor) -> tuple[list[_LayerFeatures], torch.Tensor | None]:
        layer_features = self._layer_features(x) if self.layers else []
        jac = self._fallback_jacobian(x) if self.fallback else None
        return layer_features, jac

    def _layer_features(self, x: torch.Tensor) -> list[_LayerFeatures]:
        calls: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {i: [] for i in range(len(self.layers))}
        hooks = [
            layer.module.register_forward_hook(lambda _m, inp, out, i=i: calls[i].append((inp[0].detach(), out)))
            for i, layer in enumerate(self.layers)
        ]
        try:
            out = self.module(x).reshape(x.shape[0], -1)
        finally:
            for hook in hooks:
                hook.remove()
        flat = [(i, c) for i in range(len(self.layers)) for c in range(len(calls[i]))]
        outputs = [calls[i][c][1] for i, c in flat]
        per_output = []
        for o in range(self.num_outputs):
            grads = torch.autograd.grad(
                out[:, o].sum(), outputs, retain_graph=o + 1 < self.num_outputs, allow_unused=True
            )
            per_output.append([torch.zeros_like(t) if g is None else g for g, t in zip(grads, outputs)])
        result = []
        for i, layer in enumerate(self.layers):
            rows = [
                layer.rows(inp, outp, [per_output[o][flat.index((i, c))] for o in range(self.num_outputs)])
                for c, (inp, outp) in enumerate(calls[i])
            ]
            a = torch.cat([r[0] for r in rows], dim=1)  # several calls of one layer: positions add up
            g = torch.cat([r[1] for r in rows], dim=2)
            result.append(self._finish(layer, a.detach(), g.detach()))
        return result

    def _finish(self, layer: _Layer, a: torch.Tensor, g: torch.Tensor) -> _LayerFeatures:
        k, n, positions, out_dim = g.shape
        in_dim = a.shape[-1]
        if layer.materialize is None:
            # Flops per pair of samples of the two ways to form this layer's Gram.
            layer.materialize = k * out_dim * in_dim < positions**2 * (k * out_dim + in_dim)
        gb = g.sum(dim=2) * layer.c_b if layer.bias else None
        if not layer.weight:
            return _LayerFeatures(None, None, None, gb)
        if layer.materialize:
            jw = torch.einsum("knpo,npi->knoi", g, a).reshape(k, n, out_dim * in_dim) * layer.c_w
            transient = a.numel() * a.element_size() + g.numel() * g.element_size()
            return _LayerFeatures(None, None, jw, gb, transient)
        if positions == 1 and gb is not None and layer.c_w != 0:
            # With one position the bias gradient is (c_b / c_w) times the stored signal, so its
            # Gram term reuses the weight term's g g^T product instead of a second matmul.
            return _LayerFeatures(a, g * layer.c_w, None, None, bias_scale=(layer.c_b / layer.c_w) ** 2)
        return _LayerFeatures(a, g * layer.c_w, None, gb)

    def _fallback_jacobian(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample Jacobian of the outputs w.r.t. the fallback parameters, (K, n, p)."""
        params = {name: p.detach() for name, p in self.fallback.items()}
        # The other parameters enter as constants, so that the result carries no autograd graph.
        frozen = {name: p.detach() for name, p in self.module.named_parameters() if name not in params}

        def f(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
            return functional_call(self.module, {**frozen, **p}, (xi.unsqueeze(0),)).reshape(-1)

        jac = vmap(jacrev(f), in_dims=(None, 0))(params, x)  # name -> (n, K, *shape)
        flat = torch.cat([j.reshape(x.shape[0], self.num_outputs, -1) for j in jac.values()], dim=2)
        return flat.transpose(0, 1)


def _layer_gram(fa: _LayerFeatures, fb: _LayerFeatures, per_output: bool) -> torch.Tensor:
    """One layer's contribution to the (n1, n2) or (n1, n2, K, K) Gram block, from (1)."""
    terms = []
    if fa.jw is not None:
        terms.append(_contract(fa.jw, fb.jw, per_output))
    elif fa.a is not None:
        k, n1, p1, out_dim = fa.g.shape
        n2, p2 = fb.a.shape[0], fb.a.shape[1]
        sa = fa.a.reshape(n1 * p1, -1) @ fb.a.reshape(n2 * p2, -1).T  # (n1 P, n2 P) input products
        if fa.bias_scale:
            sa = sa + fa.bias_scale  # (c_w^2 a.a' + c_b^2) (g.g') in one product, see _finish
        if per_output:
            sg = torch.einsum("kiu,lju->klij", fa.g.reshape(k, n1 * p1, out_dim), fb.g.reshape(k, n2 * p2, out_dim))
            product = sg * sa
            if p1 * p2 > 1:
                product = product.reshape(k, k, n1, p1, n2, p2).sum(dim=(3, 5))
            terms.append(product.permute(2, 3, 0, 1))
        else:
            ga = fa.g.permute(1, 2, 0, 3).reshape(n1 * p1, k * out_dim)
            gb = fb.g.permute(1, 2, 0, 3).reshape(n2 * p2, k * out_dim)
            product = (ga @ gb.T).mul_(sa)
            terms.append(product.reshape(n1, p1, n2, p2).sum(dim=(1, 3)) if p1 * p2 > 1 else product)
    if fa.gb is not None:
        terms.append(_contract(fa.gb, fb.gb, per_output))
    return sum(terms[1:], terms[0])


def _contract(ja: torch.Tensor, jb: torch.Tensor, per_output: bool) -> torch.Tensor:
    """Gram of per-sample gradients (K, n, p): trace over K, or every (k, l) pair."""
    if per_output:
        return torch.einsum("kip,ljp->ijkl", ja, jb)
    k, n1, p = ja.shape
    return ja.permute(1, 0, 2).reshape(n1, k * p) @ jb.permute(1, 0, 2).reshape(jb.shape[1], k * p).T


def _blocked_gram(
    features: Callable[[torch.Tensor], Any],
    a: torch.Tensor,
    b: torch.Tensor | None,
    block: int,
    per_output: bool,
    cacheable: bool,
) -> torch.Tensor:
    """Fill the Gram block by block; column features are cached when ``cacheable``."""
    symmetric = b is None
    b = a if symmetric else b
    n1, n2 = a.shape[0], b.shape[0]
    gram: torch.Tensor | None = None
    col_cache: dict[int, Any] = {}
    for i in range(0, n1, block):
        # Symmetric: row block i may already have been built as a column; later rows only use
        # columns j >= their own index, so it is not needed again once it is the row.
        row = col_cache.pop(i, None) if symmetric else None
        if row is None:
            row = features(a[i : i + block])
        for j in range(i if symmetric else 0, n2, block):
            col = row if symmetric and j == i else col_cache.get(j)
            if col is None:
                col = features(b[j : j + block])
                if cacheable:
                    col_cache[j] = col
            blk = _pair_gram(row, col, per_output)
            if gram is None:
                gram = a.new_zeros((n1, n2) + tuple(blk.shape[2:]))
            gram[i : i + blk.shape[0], j : j + blk.shape[1]] = blk
            if symmetric and j != i:
                # Theta(x', x)_{kl} = Theta(x, x')_{lk}
                gram[j : j + blk.shape[1], i : i + blk.shape[0]] = blk.transpose(0, 1).transpose(-1, -2) if per_output else blk.T
    assert gram is not None
    return gram


def _pair_gram(row: Any, col: Any, per_output: bool) -> torch.Tensor:
    layers_a, jac_a = row
    layers_b, jac_b = col
    terms = [_layer_gram(fa, fb, per_output) for fa, fb in zip(layers_a, layers_b)]
    if jac_a is not None:
        terms.append(_contract(jac_a, jac_b, per_output))
    return sum(terms[1:], terms[0])
