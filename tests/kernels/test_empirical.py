"""empirical_ntk against a plain per-sample torch.autograd Jacobian loop (the definition).

float64 throughout: both sides are exact up to rounding, so 1e-10 relative (max-norm) allows
only summation-order differences over a few thousand terms.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genlab.kernels import empirical_ntk
from genlab.models import ArchSpec

RTOL = 1e-10


def autograd_ntk(module: nn.Module, x1: torch.Tensor, x2: torch.Tensor, per_output: bool = False) -> np.ndarray:
    """Theta[i, j] = sum_o J_o(x1_i) . J_o(x2_j) from one autograd.grad call per sample and output."""
    params = [p for p in module.parameters() if p.requires_grad]

    def jacobian(x: torch.Tensor) -> torch.Tensor:
        rows = []
        for xi in x:
            out = module(xi[None]).reshape(-1)
            rows.append(
                torch.stack(
                    [torch.cat([g.reshape(-1) for g in torch.autograd.grad(out[o], params, retain_graph=True)]) for o in range(out.numel())]
                )
            )
        return torch.stack(rows)  # (n, K, p)

    j1, j2 = jacobian(x1), jacobian(x2)
    pattern = "ikp,jlp->ijkl" if per_output else "ikp,jkp->ij"
    return torch.einsum(pattern, j1, j2).detach().numpy()


def _max_rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


SPEC_CASES = [
    (ArchSpec(kind="fc", depth=2, b_std=0.3, out_dim=3), (5,)),
    (ArchSpec(kind="fc", depth=2, activation="erf", parametrization="standard", b_std=0.5), (4,)),
    (ArchSpec(kind="fc", depth=2, parametrization="mup", b_std=0.5, out_dim=2), (4,)),
    (ArchSpec(kind="conv1d", depth=2, b_std=0.2, out_dim=2, padding="SAME"), (9, 3)),
    (ArchSpec(kind="conv1d", depth=1, stride=2, padding="VALID", pooling="global_avg"), (9, 3)),
    (ArchSpec(kind="conv2d", depth=2, stride=2, padding="CIRCULAR", pooling="global_avg", b_std=0.1), (7, 6, 2)),
]


@pytest.mark.parametrize(("spec", "shape"), SPEC_CASES, ids=lambda c: getattr(c, "kind", "") + "-" + getattr(c, "parametrization", ""))
@pytest.mark.parametrize("block_size", [None, 3])
@pytest.mark.parametrize("per_output", [False, True])
def test_spec_networks_match_autograd(spec: ArchSpec, shape: tuple, block_size: int | None, per_output: bool) -> None:
    net = spec.to_torch(12, input_shape=shape, seed=0, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(7, *shape, generator=g, dtype=torch.float64)
    x2 = torch.randn(5, *shape, generator=g, dtype=torch.float64)
    for method in ("auto", "jacobian"):
        got = empirical_ntk(net, x1, x2, block_size=block_size, per_output=per_output, method=method)
        assert _max_rel(got, autograd_ntk(net, x1, x2, per_output)) < RTOL
        sym = empirical_ntk(net, x1, block_size=block_size, per_output=per_output, method=method)
        assert _max_rel(sym, autograd_ntk(net, x1, x1, per_output)) < RTOL


def test_plain_torch_layers_and_fallback_parameters() -> None:
    """nn.Conv2d (circular and 'valid' padding, stride), nn.Linear on a 3-D input (a layer applied
    at several positions), LayerNorm and a bare Parameter (torch.func fallback), and a layer
    called twice in one forward pass (weight sharing: positions add up)."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(2, 4, 3, padding=1, padding_mode="circular")
            self.conv2 = nn.Conv2d(4, 3, 3, stride=2, padding="valid")
            self.norm = nn.LayerNorm([3, 2, 2])
            self.shared = nn.Linear(2, 2)
            self.scale = nn.Parameter(torch.tensor([1.5, -0.5]))
            self.head = nn.Linear(12, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.norm(self.conv2(torch.tanh(self.conv1(x))))
            h = torch.tanh(self.shared(h.reshape(h.shape[0], 6, 2)))  # Linear over 6 positions
            h = self.shared(h) * self.scale  # the same Linear again
            return self.head(h.flatten(1))

    net = Net().double()
    x = torch.randn(6, 2, 6, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    reference = autograd_ntk(net, x, x)
    for block_size in (None, 4):
        assert _max_rel(empirical_ntk(net, x, block_size=block_size), reference) < RTOL


def test_output_scaled_ntk_is_alpha_squared_and_ignores_the_frozen_copy() -> None:
    spec = ArchSpec(b_std=0.2)
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    base = spec.to_torch(16, input_shape=(3,), seed=2, dtype=torch.float64)
    scaled = spec.to_torch(16, input_shape=(3,), seed=2, alpha=3.0, dtype=torch.float64)
    np.testing.assert_allclose(empirical_ntk(scaled, x), 9.0 * empirical_ntk(base, x), rtol=RTOL)


def test_float32_module_gives_float32_and_accepts_numpy() -> None:
    net = ArchSpec().to_torch(8, input_shape=(3,), seed=0)
    out = empirical_ntk(net, np.ones((4, 3)))
    assert out.dtype == np.float32 and out.shape == (4, 4)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda net, x: empirical_ntk("net", x), TypeError, r"module must be a torch\.nn\.Module; got str"),
        (lambda net, x: empirical_ntk(net, x, x[:, :2]), ValueError, r"x2 must have per-sample shape \(3,\) to match x1; got \(2,\)"),
        (lambda net, x: empirical_ntk(net, x, block_size=0), ValueError, r"block_size must be a positive int; got 0"),
        (lambda net, x: empirical_ntk(net, x, method="fast"), ValueError, r"method must be one of \('auto', 'jacobian'\); got 'fast'"),
        (lambda net, x: empirical_ntk(net, x[:0]), ValueError, r"x1 must have shape \(n, \*input_shape\) with n >= 1"),
        (lambda net, x: empirical_ntk(net.requires_grad_(False), x), ValueError, r"no parameter with requires_grad=True"),
        (lambda net, x: empirical_ntk(nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)), x), ValueError, r"BatchNorm in training mode"),
        (lambda net, x: empirical_ntk(net, torch.ones(4, 5)), ValueError, r"x must have shape \(batch, 3\); got \(1, 5\)"),
    ],
)
def test_bad_input_names_the_argument(call, error, match) -> None:
    net = ArchSpec().to_torch(8, input_shape=(3,), seed=0)
    with pytest.raises(error, match=match):
        call(net, torch.ones(4, 3))


@pytest.mark.parametrize("method", ["auto", "jacobian"])
def test_each_block_is_built_once(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocked Gram: every sample's features are computed once (the symmetric path reuses a row
    block built earlier as a column); a benchmark baseline that rebuilt them looked 3x slower."""
    from genlab.kernels import _empirical

    built: list[int] = []
    original = _empirical._BlockFeatures.__call__
    monkeypatch.setattr(_empirical._BlockFeatures, "__call__", lambda self, x: built.append(x.shape[0]) or original(self, x))
    net = ArchSpec(b_std=0.1).to_torch(8, input_shape=(3,), seed=0, dtype=torch.float64)
    x = torch.randn(10, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    empirical_ntk(net, x, block_size=3, method=method)
    assert sum(built) == 1 + 10  # one sample for the cost estimate, then each sample once
    built.clear()
    empirical_ntk(net, x, x[:7], block_size=3, method=method)
    assert sum(built) == 1 + 10 + 7
