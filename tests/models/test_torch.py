"""The torch realisation computes the same function as neural-tangents' apply_fn, and its output
at init has the NNGP's covariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.kernels import analytic_kernel
from genlab.models import ArchSpec, OutputScaled, ScaledConv
from tests.conftest import rel_frobenius

SHAPES = {"fc": (5,), "conv1d": (9, 3), "conv2d": (7, 6, 2)}

APPLY_SPECS = [
    ArchSpec(kind="fc", depth=3, activation="relu", b_std=0.3),
    ArchSpec(kind="fc", depth=2, activation="erf", parametrization="standard", b_std=0.2, out_dim=3),
    ArchSpec(kind="fc", depth=0, w_std=1.5, b_std=0.5),
    ArchSpec(kind="conv1d", depth=2, activation="gelu", padding="SAME", stride=2, b_std=0.1),
    ArchSpec(kind="conv1d", depth=2, padding="VALID", pooling="global_avg", parametrization="standard"),
    ArchSpec(kind="conv2d", depth=2, padding="CIRCULAR", stride=2, b_std=0.2, out_dim=2),
    ArchSpec(kind="conv2d", depth=1, padding="SAME", filter_size=2, pooling="global_avg", activation="identity"),
]


def _nt_params_from_torch(spec: ArchSpec, net: torch.nn.Module, nt_params: list) -> list:
    """neural-tangents' parameter list filled with the torch network's weights.

    torch keeps W as (out, in[, k...]); neural-tangents as (in, out) for Dense and
    (k..., in, out) for Conv, with biases broadcast along the channel axis.
    """
    layers = list(net.hidden) + [net.readout]
    out, it = [], iter(layers)
    for entry in nt_params:
        if entry == ():
            out.append(())
            continue
        layer = next(it)
        w = layer.weight.detach().numpy()
        w = np.moveaxis(w, (0, 1), (-1, -2)) if isinstance(layer, ScaledConv) else w.T
        b = None if layer.bias is None else layer.bias.detach().numpy().reshape(entry[1].shape)
        out.append((w, b))
    return out


@pytest.mark.parametrize("spec", APPLY_SPECS, ids=lambda s: f"{s.kind}-{s.parametrization}-{s.activation}-{s.padding}")
def test_torch_forward_equals_neural_tangents_apply_fn(spec: ArchSpec) -> None:
    """Same weights, same function: float64 agreement to 1e-10 (rounding only) checks that both
    realisations use one multiplier convention, padding, pooling and flattening order."""
    import jax
    from jax.experimental import enable_x64

    shape = SHAPES[spec.kind]
    width = 16
    net = spec.to_torch(width, input_shape=shape, seed=7, dtype=torch.float64)
    x = np.random.default_rng(0).normal(size=(4, *shape))
    with enable_x64():
        init_fn, apply_fn, _ = spec.to_stax(width)
        _, nt_params = init_fn(jax.random.PRNGKey(0), (-1, *shape))
        nt_out = np.asarray(apply_fn(_nt_params_from_torch(spec, net, nt_params), x))
    torch_out = net(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(torch_out, nt_out, rtol=1e-10, atol=1e-12)


# Monte Carlo check of the output covariance at init.
MC_SEEDS = 2000
MC_WIDTH = 256
MC_INPUTS = 6


@pytest.mark.parametrize(
    "spec",
    [
        ArchSpec(kind="fc", depth=2, activation="relu", w_std=1.4, b_std=0.2),
        ArchSpec(kind="fc", depth=2, activation="erf", parametrization="standard", w_std=1.2, b_std=0.3),
        ArchSpec(kind="fc", depth=2, activation="relu", parametrization="mup", w_std=1.4),
        ArchSpec(kind="conv1d", depth=1, activation="gelu", b_std=0.1),
    ],
    ids=lambda s: f"{s.kind}-{s.parametrization}-{s.activation}",
)
def test_output_covariance_at_init_is_the_nngp(spec: ArchSpec) -> None:
    """Cov over seeds of f(x) at init vs the NNGP (Lee et al. 2018); for muP, width * Cov.

    For Gaussian outputs the sample covariance has Var(C_ij) = (C_ii C_jj + C_ij^2) / S, so the
    expected relative Frobenius error is sqrt(sum_ij Var) / ||C||_F (~3% here); the finite width
    adds an O(1/width) bias (~0.4% at 256). The tolerance is 3x the Monte Carlo error plus 2%.
    """
    shape = SHAPES[spec.kind]
    x = np.random.default_rng(1).normal(size=(MC_INPUTS, *shape))
    xt = torch.from_numpy(x)
    with torch.no_grad():
        samples = np.stack(
            [spec.to_torch(MC_WIDTH, input_shape=shape, seed=s, dtype=torch.float64)(xt)[:, 0].numpy() for s in range(MC_SEEDS)]
        )
    cov = samples.T @ samples / MC_SEEDS  # zero-mean outputs: E[f f^T]
    if spec.parametrization == "mup":
        cov = cov * MC_WIDTH  # readout fan-in = width for fc
    nngp = analytic_kernel(spec, x, get="nngp", width=MC_WIDTH)
    mc_error = np.sqrt(np.sum(np.outer(np.diag(nngp), np.diag(nngp)) + nngp**2) / MC_SEEDS) / np.linalg.norm(nngp)
    assert rel_frobenius(cov, nngp) < 3 * mc_error + 0.02


def test_output_scaled_is_centered_and_scales_the_gradient() -> None:
    """alpha (f - f0): zero at init; its parameter gradient is alpha times f's."""
    spec = ArchSpec(b_std=0.1)
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    base = spec.to_torch(32, input_shape=(4,), seed=0, dtype=torch.float64)
    scaled = spec.to_torch(32, input_shape=(4,), seed=0, alpha=10.0, dtype=torch.float64)
    assert isinstance(scaled, OutputScaled) and scaled.loss_scale == pytest.approx(1e-2)
    assert torch.equal(scaled(x), torch.zeros(3, 1, dtype=torch.float64))
    g_base = torch.autograd.grad(base(x).sum(), list(base.parameters()))
    g_scaled = torch.autograd.grad(scaled(x).sum(), [p for p in scaled.parameters() if p.requires_grad])
    for a, b in zip(g_base, g_scaled):
        torch.testing.assert_close(b, 10.0 * a, rtol=1e-12, atol=0)
    assert all(not p.requires_grad for p in scaled.initial.parameters())


@pytest.mark.parametrize("alpha", [0.0, -1.0, float("inf"), True])
def test_output_scaled_rejects_bad_alpha(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha must be a finite float > 0"):
        ArchSpec().to_torch(8, input_shape=(3,), seed=0, alpha=alpha)
