"""analytic_kernel against closed forms written here from the papers, independent of
neural-tangents, in float64 to 1e-6 relative (the arccos / arcsin maps are exact; 1e-6 leaves
room only for the rounding of a few dozen float64 operations near theta = 0)."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.kernels import analytic_kernel
from genlab.models import ArchSpec, SpecError

RTOL = 1e-6
D = 7


def _inputs(n: int = 9, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, D))
    x[1] = 2.5 * x[0]  # theta = 0 for one pair: the boundary of arccos
    x[2] = -x[0]  # theta = pi
    return x


def _relu_maps(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009) for (u, v) ~ N(0, cov):
    E[relu(u) relu(v)] = sqrt(c11 c22) / (2 pi) (sin t + (pi - t) cos t),
    E[relu'(u) relu'(v)] = (pi - t) / (2 pi), t = arccos(c12 / sqrt(c11 c22))."""
    norms = np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    theta = np.arccos(np.clip(cov / norms, -1.0, 1.0))
    return norms / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * np.cos(theta)), (np.pi - theta) / (2 * np.pi)


def _erf_maps(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Williams 1997: E[erf(u) erf(v)] = (2/pi) arcsin(2 c12 / sqrt((1 + 2 c11)(1 + 2 c22))),
    E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 c11)(1 + 2 c22) - 4 c12^2)."""
    d = 1 + 2 * np.diag(cov)
    prod = np.outer(d, d)
    return 2 / np.pi * np.arcsin(2 * cov / np.sqrt(prod)), 4 / np.pi / np.sqrt(prod - 4 * cov**2)


def _closed_form(x: np.ndarray, depth: int, w_std: float, b_std: float, maps) -> tuple[np.ndarray, np.ndarray]:
    """NNGP and NTK of a depth-`depth` fc net in NTK parametrization (Jacot et al. 2018, Thm 1):
    Sigma^0 = w^2 x.x'/d + b^2, Theta^0 = Sigma^0;
    Sigma^{l+1} = w^2 E[phi phi] + b^2, Theta^{l+1} = Sigma^{l+1} + w^2 Theta^l E[phi' phi']."""
    sigma = w_std**2 * x @ x.T / x.shape[1] + b_std**2
    theta = sigma
    for _ in range(depth):
        e_phi, e_dphi = maps(sigma)
        sigma_next = w_std**2 * e_phi + b_std**2
        theta = sigma_next + w_std**2 * theta * e_dphi
        sigma = sigma_next
    return sigma, theta


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize(("activation", "maps"), [("relu", _relu_maps), ("erf", _erf_maps)])
def test_fc_kernels_match_closed_forms(depth: int, activation: str, maps) -> None:
    """Depth 1 ReLU is the issue's reference (arc-cosine NNGP layer map and the one-hidden-layer
    ReLU NTK); depth 3 and erf check the recursion and a second activation."""
    x = _inputs()
    spec = ArchSpec(kind="fc", depth=depth, activation=activation, w_std=1.3, b_std=0.4)
    nngp, ntk = _closed_form(x, depth, 1.3, 0.4, maps)
    np.testing.assert_allclose(analytic_kernel(spec, x, get="nngp"), nngp, rtol=RTOL, atol=0)
    np.testing.assert_allclose(analytic_kernel(spec, x, get="ntk"), ntk, rtol=RTOL, atol=0)


def test_standard_parametrization_ntk_scales_with_width() -> None:
    """Sohl-Dickstein et al. 2020: in the standard parametrization each layer adds
    fan_in * Sigma^{l} (+1 for a bias) to the NTK instead of Sigma^{l}; one hidden ReLU layer:
    Theta = width * w^2 E[phi phi] + 1 + w^2 (d Sigma^0_x + 1) E[phi' phi'], Sigma^0_x = x.x'/d."""
    x, w, b, width = _inputs(), 1.3, 0.4, 300
    sigma0 = w**2 * x @ x.T / D + b**2
    e_phi, e_dphi = _relu_maps(sigma0)
    ntk = width * e_phi + 1 + w**2 * (x @ x.T + 1) * e_dphi
    spec = ArchSpec(depth=1, parametrization="standard", w_std=w, b_std=b)
    np.testing.assert_allclose(analytic_kernel(spec, x, width=width), ntk, rtol=RTOL, atol=0)
    # The NNGP does not depend on the parametrization.
    np.testing.assert_allclose(
        analytic_kernel(spec, x, get="nngp", width=width),
        analytic_kernel(ArchSpec(depth=1, w_std=w, b_std=b), x, get="nngp"),
        rtol=RTOL,
    )


def test_blocks_and_dtypes_agree() -> None:
    """Blocking (uneven last block, rectangular x1/x2) changes no entry; float32 input gives
    float32 output. Tolerance 5e-4: on the diagonal arccos is taken at cos(theta) ~ 1, where
    float32 rounding of the cosine gives theta ~ sqrt(2 eps32) ~ 5e-4, and the NTK factor
    (pi - theta) / (2 pi) then carries ~2e-4 relative error."""
    spec = ArchSpec(kind="conv1d", depth=2, b_std=0.1)
    x = np.random.default_rng(1).normal(size=(11, 6, 2))
    full = analytic_kernel(spec, x)
    assert full.dtype == np.float64
    np.testing.assert_allclose(analytic_kernel(spec, x, block_size=4), full, rtol=1e-12)
    np.testing.assert_allclose(analytic_kernel(spec, x[:5], x[5:], block_size=3), full[:5, 5:], rtol=1e-12)
    low = analytic_kernel(spec, x.astype(np.float32))
    assert low.dtype == np.float32
    np.testing.assert_allclose(low, full, rtol=5e-4, atol=0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda x: analytic_kernel("fc", x), TypeError, r"spec must be an ArchSpec; got str"),
        (lambda x: analytic_kernel(ArchSpec(), x, get="cov"), ValueError, r"get must be one of \('ntk', 'nngp'\); got 'cov'"),
        (lambda x: analytic_kernel(ArchSpec(), x[0]), ValueError, r"x1 must have shape \(n, \*input_shape\)"),
        (lambda x: analytic_kernel(ArchSpec(), x, x[:, :3]), ValueError, r"x2 must have per-sample shape \(7,\) to match x1"),
        (lambda x: analytic_kernel(ArchSpec(kind="conv1d"), x), SpecError, r"x1\.shape\[1:\] must be a tuple \(length, channels\)"),
        (lambda x: analytic_kernel(ArchSpec(parametrization="standard"), x), SpecError, r"width is required"),
        (lambda x: analytic_kernel(ArchSpec(parametrization="mup"), x), SpecError, r"'mup' has no fixed NTK limit"),
        (lambda x: analytic_kernel(ArchSpec(), x, block_size=0), Exception, r"block_size must be a positive int; got 0"),
        (lambda x: analytic_kernel(ArchSpec(), np.where(x > 1, np.nan, x)), ValueError, r"x1 contains NaN"),
        (lambda x: analytic_kernel(ArchSpec(), x.astype(str)), TypeError, r"x1 must be a numeric"),
    ],
)
def test_bad_input_names_the_argument(call, error, match) -> None:
    with pytest.raises(error, match=match):
        call(_inputs())
