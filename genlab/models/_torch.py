"""The torch realisation of an ArchSpec: layers with explicit multipliers, as neural-tangents.

Each trained layer computes ``h = c_w * (W * a) + c_b * b`` where ``*`` is a matrix product
(:class:`ScaledLinear`) or a convolution (:class:`ScaledConv`), and ``W``, ``b`` are initialised
``N(0, s_w^2)``, ``N(0, s_b^2)``. The parametrization only chooses ``(c_w, s_w, c_b, s_b)`` per
layer role (input, hidden, readout); the values are given in :func:`layer_scales`. Keeping the
multipliers explicit is what lets :func:`genlab.kernels.empirical_ntk` use the factored
Jacobian products of these layers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models._spec import SpecError, conv_output_size, same_padding

if TYPE_CHECKING:
    from genlab.models._spec import ArchSpec

_ACTIVATIONS = {
    "relu": F.relu,
    "erf": torch.erf,
    "gelu": F.gelu,  # exact: x * Phi(x), as neural-tangents' Gelu(approximate=False)
    "identity": lambda x: x,
}


def layer_scales(
    parametrization: str, role: str, *, fan_in: int, fan_out: int, width: int, w_std: float, b_std: float | None
) -> tuple[float, float, float | None, float]:
    """``(c_w, s_w, c_b, s_b)`` of one layer: weight multiplier and init std, bias likewise.

    ntk:      c_w = w_std / sqrt(fan_in), s_w = 1;       c_b = b_std, s_b = 1.
    standard: c_w = 1, s_w = w_std / sqrt(fan_in);       c_b = 1, s_b = b_std.
    mup (Yang & Hu 2021, Table 3, with n = width):
      input:   c_w = w_std * sqrt(n / fan_in), s_w = 1/sqrt(n)
      hidden:  c_w = w_std,                    s_w = 1/sqrt(fan_in)
      readout: c_w = w_std / sqrt(fan_in),     s_w = 1/sqrt(fan_in)
      biases:  c_b = b_std * sqrt(fan_out),    s_b = 1/sqrt(fan_out)
    ``c_b`` is None when the spec has no biases (``b_std is None``).
    """
    if parametrization == "ntk":
        scales = (w_std / math.sqrt(fan_in), 1.0, b_std, 1.0)
    elif parametrization == "standard":
        scales = (1.0, w_std / math.sqrt(fan_in), 1.0, b_std or 0.0)
    else:
        c_w, s_w = {
            "input": (w_std * math.sqrt(width / fan_in), 1.0 / math.sqrt(width)),
            "hidden": (w_std, 1.0 / math.sqrt(fan_in)),
            "readout": (w_std / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in)),
        }[role]
        scales = (c_w, s_w, None if b_std is None else b_std * math.sqrt(fan_out), 1.0 / math.sqrt(fan_out))
    c_w, s_w, c_b, s_b = scales
    return c_w, s_w, (None if b_std is None else c_b), s_b


class ScaledLinear(nn.Module):
    """``h = c_w * a W^T + c_b * b`` over the last axis of ``a``; ``W`` is (out, in)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        weight_multiplier: float,
        weight_init_std: float,
        bias_multiplier: float | None,
        bias_init_std: float,
        generator: torch.Generator,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.weight_multiplier = weight_multiplier
        self.bias_multiplier = bias_multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features, generator=generator, dtype=dtype) * weight_init_std)
        if bias_multiplier is None:
            self.register_parameter("bias", None)
        else:
            self.bias = nn.Parameter(torch.randn(out_features, generator=generator, dtype=dtype) * bias_init_std)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        h = F.linear(a, self.weight) * self.weight_multiplier
        if self.bias is not None:
            h = h + self.bias_multiplier * self.bias
        return h

    def extra_repr(self) -> str:
        out_features, in_features = self.weight.shape
        return f"{in_features}, {out_features}, c_w={self.weight_multiplier:.4g}, c_b={self.bias_multiplier}"


class ScaledConv(nn.Module):
    """``h = c_w * conv(pad(a), W) + c_b * b`` on channels-first ``a`` of 1 or 2 spatial axes.

    Padding follows XLA: "SAME" pads ``same_padding`` zeros, "CIRCULAR" wraps the same amounts,
    "VALID" pads nothing. :meth:`pad` is public so that the empirical NTK can form patches.
    """

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        *,
        filter_size: int,
        stride: int,
        padding: str,
        weight_multiplier: float,
        weight_init_std: float,
        bias_multiplier: float | None,
        bias_init_std: float,
        generator: torch.Generator,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.spatial_dims = spatial_dims
        self.filter_size = filter_size
        self.stride = stride
        self.padding = padding
        self.weight_multiplier = weight_multiplier
        self.bias_multiplier = bias_multiplier
        shape = (out_channels, in_channels) + (filter_size,) * spatial_dims
        self.weight = nn.Parameter(torch.randn(shape, generator=generator, dtype=dtype) * weight_init_std)
        if bias_multiplier is None:
            self.register_parameter("bias", None)
        else:
            self.bias = nn.Parameter(torch.randn(out_channels, generator=generator, dtype=dtype) * bias_init_std)

    def pad(self, a: torch.Tensor) -> torch.Tensor:
        """The input as the convolution sees it (padded as XLA's SAME / CIRCULAR / VALID)."""
        if self.padding == "VALID":
            return a
        pads: list[int] = []
        for size in reversed(a.shape[2:]):  # F.pad lists the last axis first
            pads.extend(same_padding(size, self.filter_size, self.stride))
        return F.pad(a, pads, mode="circular" if self.padding == "CIRCULAR" else "constant")

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        conv = F.conv1d if self.spatial_dims == 1 else F.conv2d
        h = conv(self.pad(a), self.weight, stride=self.stride) * self.weight_multiplier
        if self.bias is not None:
            h = h + self.bias_multiplier * self.bias.view((-1,) + (1,) * self.spatial_dims)
        return h

    def extra_repr(self) -> str:
        return (
            f"{self.weight.shape[1]}, {self.weight.shape[0]}, filter={self.filter_size}, stride={self.stride}, "
            f"padding={self.padding}, c_w={self.weight_multiplier:.4g}, c_b={self.bias_multiplier}"
        )


class SpecNetwork(nn.Module):
    """The finite-width network of an ArchSpec; takes ``(batch, *input_shape)`` channels-last."""

    def __init__(
        self, spec: "ArchSpec", width: int, input_shape: tuple[int, ...], *, seed: int, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        if spec.parametrization == "mup" and spec.depth == 0:
            raise SpecError("must be >= 1 for parametrization 'mup' (a linear model has no width to scale)", key="depth", owner="ArchSpec")
        self.spec = spec
        self.width = width
        self.input_shape = input_shape
        self.activation = _ACTIVATIONS[spec.activation]
        generator = torch.Generator().manual_seed(seed)
        nd = spec.spatial_dims
        in_channels = input_shape[-1]
        spatial = input_shape[:-1]
        layers: list[nn.Module] = []
        for index in range(spec.depth):
            role = "input" if index == 0 else "hidden"
            fan_in = in_channels * spec.filter_size**nd
            c_w, s_w, c_b, s_b = layer_scales(
                spec.parametrization, role, fan_in=fan_in, fan_out=width, width=width, w_std=spec.w_std, b_std=spec.b_std
            )
            common = dict(weight_multiplier=c_w, weight_init_std=s_w, bias_multiplier=c_b, bias_init_std=s_b)
            if spec.kind == "fc":
                layers.append(ScaledLinear(in_channels, width, generator=generator, dtype=dtype, **common))
            else:
                layers.append(
                    ScaledConv(
                        nd, in_channels, width, filter_size=spec.filter_size, stride=spec.stride,
                        padding=spec.padding, generator=generator, dtype=dtype, **common,
                    )
                )
                spatial = tuple(conv_output_size(s, spec.filter_size, spec.stride, spec.padding) for s in spatial)
            in_channels = width
        readout_fan_in = in_channels * (math.prod(spatial) if spec.kind != "fc" and spec.pooling == "flatten" else 1)
        c_w, s_w, c_b, s_b = layer_scales(
            spec.parametrization, "readout" if spec.depth else "input", fan_in=readout_fan_in, fan_out=spec.out_dim,
            width=width, w_std=spec.w_std, b_std=spec.b_std,
        )
        self.hidden = nn.ModuleList(layers)
        self.readout = ScaledLinear(
            readout_fan_in, spec.out_dim, weight_multiplier=c_w, weight_init_std=s_w, bias_multiplier=c_b,
            bias_init_std=s_b, generator=generator, dtype=dtype,
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last hidden representation (after activation and pooling), ``(batch, features)``."""
        if tuple(x.shape[1:]) != self.input_shape or x.ndim != len(self.input_shape) + 1:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, self.input_shape))}); got {tuple(x.shape)}")
        h = x if self.spec.kind == "fc" else x.movedim(-1, 1)  # channels-last -> channels-first
        for layer in self.hidden:
            h = self.activation(layer(h))
        if self.spec.kind == "fc":
            return h
        if self.spec.pooling == "global_avg":
            return h.mean(dim=tuple(range(2, h.ndim)))
        return h.movedim(1, -1).flatten(1)  # flatten channels-last, as neural-tangents' Flatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(x))
