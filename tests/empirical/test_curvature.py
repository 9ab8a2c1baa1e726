"""Curvature estimators against the explicit Hessian / GGN of the training objective L.

L = loss_scale * mean_i per_sample_loss(f(x_i), y_i) is written out here independently (with
torch.func.hessian over the flattened trainable parameters) on ~30-parameter networks.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call, hessian, jacrev

from genlab.empirical._curvature import hessian_operator, hessian_trace, nonuniformity, spectral_density, top_eigenvalues
from genlab.models import ArchSpec, OutputScaled

#: float64 products vs the explicit matrix: only round-off of a few hundred flops apart.
MATVEC_ATOL = 1e-10
#: eigsh at tol=1e-8 is far below this; the brief's acceptance level for the top-3 values.
EIGEN_RTOL = 1e-4
#: Hutchinson is a mean of i.i.d. terms: the exact trace lies within 3 standard errors
#: (a fixed seed makes this deterministic; ~0.3% of seeds would fail by chance).
TRACE_SIGMAS = 3.0
#: The trapezoid integral of the renormalised density is 1 up to round-off; the brief asks 1e-3.
DENSITY_MASS_TOL = 1e-3
#: Support of the density: where it exceeds this fraction of its maximum.
SUPPORT_FRACTION = 1e-3


def _net(alpha: float | None = None, outputs: int = 1) -> torch.nn.Module:
    spec = ArchSpec(depth=1, activation="gelu", b_std=0.1)
    module = spec.to_torch(6, input_shape=(3,), seed=0, dtype=torch.float64)
    if outputs != 1:
        module = torch.nn.Sequential(module, torch.nn.Linear(1, outputs, dtype=torch.float64))
    return OutputScaled(module, alpha) if alpha is not None else module


def _data(outputs: int, loss: str, n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    if loss == "cross_entropy":
        y = torch.nn.functional.one_hot(torch.randint(0, outputs, (n,), generator=g), outputs).to(torch.float64)
    elif loss in ("logistic", "squared_hinge"):
        y = torch.randint(0, 2, (n, 1), generator=g).to(torch.float64) * 2 - 1
    else:
        y = torch.randn(n, outputs, generator=g, dtype=torch.float64)
    return x, y


def _objective_parts(module: torch.nn.Module):
    names = [n for n, p in module.named_parameters() if p.requires_grad]
    shapes = [p.shape for n, p in module.named_parameters() if p.requires_grad]
    theta = torch.cat([p.detach().flatten() for n, p in module.named_parameters() if p.requires_grad])
    scale = float(getattr(module, "loss_scale", 1.0))

    def forward(flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        tensors, start = {}, 0
        for name, shape in zip(names, shapes):
            size = int(np.prod(shape))
            tensors[name] = flat[start : start + size].reshape(shape)
            start += size
        return functional_call(module, tensors, (x,))

    return theta, scale, forward


def _data_loss(out: torch.Tensor, y: torch.Tensor, loss: str, scale: float) -> torch.Tensor:
    # Written out independently of genlab's per_sample_loss.
    if loss == "mse":
        per = 0.5 * ((out - y) ** 2).sum(dim=1)
    elif loss == "cross_entropy":
        per = -(y * torch.log_softmax(out, dim=1)).sum(dim=1)
    elif loss == "logistic":
        per = torch.log1p(torch.exp(-y * out)).sum(dim=1)
    else:  # squared hinge: piecewise quadratic in the margin y f
        per = (torch.clamp(1 - y * out, min=0) ** 2).sum(dim=1)
    return scale * per.mean()


def _explicit_hessian(module, x, y, loss):
    theta, scale, forward = _objective_parts(module)
    return hessian(lambda t: _data_loss(forward(t, x), y, loss, scale))(theta)


def _explicit_ggn(module, x, y, loss):
    theta, scale, forward = _objective_parts(module)
    out = forward(theta, x)
    jac = jacrev(lambda t: forward(t, x))(theta).reshape(out.numel(), -1)
    h_out = hessian(lambda o: _data_loss(o.reshape(out.shape), y, loss, scale))(out.detach().flatten())
    return jac.T @ h_out @ jac


CASES = {
    "mse": (None, 1, "mse"),
    "mse-output-scaled": (2.0, 1, "mse"),
    "cross-entropy": (None, 3, "cross_entropy"),
    "logistic": (None, 1, "logistic"),
    "squared-hinge": (None, 1, "squared_hinge"),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    alpha, outputs, loss = CASES[request.param]
    module = _net(alpha, outputs)
    x, y = _data(outputs, loss)
    return module, x, y, loss, _explicit_hessian(module, x, y, loss)


def test_operator_is_the_hessian_of_our_objective(case):
    module, x, y, loss, h = case
    op = hessian_operator(module, x, y, loss=loss)
    v = np.random.default_rng(0).standard_normal(h.shape[0])
    np.testing.assert_allclose(op.matvec(v), h.numpy() @ v, atol=MATVEC_ATOL, rtol=0)
    assert op.hvps == 1


def test_output_scaled_hessian_carries_one_over_alpha_squared():
    # OutputScaled(alpha) f = alpha (g - g0): with loss_scale 1/alpha^2 the MSE objective's
    # Hessian at init equals that of the unscaled net with targets y / alpha.
    x, y = _data(1, "mse")
    scaled, plain = _net(2.0), _net(None)
    v = np.random.default_rng(0).standard_normal(sum(p.numel() for p in plain.parameters()))
    with torch.no_grad():
        shifted = y / 2.0 + plain(x)
    np.testing.assert_allclose(
        hessian_operator(scaled, x, y).matvec(v), hessian_operator(plain, x, shifted).matvec(v), atol=MATVEC_ATOL
    )


def test_top_eigenvalues_match_eigvalsh(case):
    module, x, y, loss, h = case
    exact = torch.linalg.eigvalsh(h).numpy()[::-1][:3]
    result = top_eigenvalues(module, x, y, k=3, tol=1e-8, loss=loss, seed=0)
    np.testing.assert_allclose(result.values, exact, rtol=EIGEN_RTOL)
    assert result.values.shape == (3,) and result.hvps > 0


def test_ggn_operator_is_jt_hout_j(case):
    module, x, y, loss, _ = case
    g = _explicit_ggn(module, x, y, loss).numpy()
    op = hessian_operator(module, x, y, loss=loss, kind="ggn")
    v = np.random.default_rng(1).standard_normal(g.shape[0])
    np.testing.assert_allclose(op.matvec(v), g @ v, atol=MATVEC_ATOL, rtol=0)
    assert np.linalg.eigvalsh(g).min() > -1e-12  # PSD for a convex loss


def test_trace_within_three_standard_errors(case):
    module, x, y, loss, h = case
    estimate, error = hessian_trace(module, x, y, samples=64, seed=0, loss=loss)
    exact = float(torch.trace(h))
    assert error > 0
    assert abs(estimate - exact) <= TRACE_SIGMAS * error


def test_density_integrates_to_one_and_covers_the_extremes(case):
    module, x, y, loss, h = case
    eig = torch.linalg.eigvalsh(h).numpy()
    grid, density = spectral_density(module, x, y, vectors=2, steps=h.shape[0], seed=0, loss=loss)
    assert abs(np.trapezoid(density, grid) - 1.0) <= DENSITY_MASS_TOL
    support = grid[density > SUPPORT_FRACTION * density.max()]
    assert support.min() <= eig.min() and support.max() >= eig.max()


def test_density_on_a_given_grid():
    module, (x, y) = _net(), _data(1, "mse")
    points = np.linspace(-1.0, 1.0, 501)
    grid, density = spectral_density(module, x, y, vectors=1, steps=8, seed=0, grid=points, sigma=0.01)
    assert np.array_equal(grid, points)
    assert abs(np.trapezoid(density, grid) - 1.0) <= DENSITY_MASS_TOL


def test_seed_determines_the_result():
    module, (x, y) = _net(), _data(1, "mse")
    a = hessian_trace(module, x, y, samples=8, seed=3)
    assert a == hessian_trace(module, x, y, samples=8, seed=3)
    assert a != hessian_trace(module, x, y, samples=8, seed=4)


@pytest.mark.parametrize(
    ("call", "kwargs", "message"),
    [
        (top_eigenvalues, {"k": 0, "seed": 0}, "k must"),
        (top_eigenvalues, {"k": 31, "seed": 0}, "k must be <"),
        (top_eigenvalues, {"tol": 0.0, "seed": 0}, "tol must"),
        (top_eigenvalues, {"loss": "hinge", "seed": 0}, "loss must"),
        (top_eigenvalues, {"kind": "fisher", "seed": 0}, "kind must"),
        (top_eigenvalues, {"seed": -1}, "seed must"),
        (hessian_trace, {"samples": 1, "seed": 0}, "samples must"),
        (spectral_density, {"steps": 0, "seed": 0}, "steps must"),
        (spectral_density, {"sigma": -1.0, "seed": 0}, "sigma must"),
        (spectral_density, {"grid": [1.0, 0.0], "seed": 0}, "grid must"),
        (hessian_trace, {"loss": "logistic", "seed": 0}, "y for loss 'logistic'"),
    ],
)
def test_bad_arguments_name_the_argument(call, kwargs, message):
    module, (x, y) = _net(), _data(1, "mse")
    with pytest.raises(ValueError, match=message):
        call(module, x, y, **kwargs)


def test_mismatched_rows_name_x_and_y():
    module, (x, y) = _net(), _data(1, "mse")
    with pytest.raises(ValueError, match="x and y must have the same number of rows"):
        hessian_operator(module, x, y[:-1])


#: eigsh at tol=1e-8 on the 30x30 covariance; the remaining error is round-off.
NONUNIFORMITY_RTOL = 1e-6


@pytest.mark.parametrize(("loss", "outputs", "alpha"), [("mse", 1, None), ("cross_entropy", 3, None), ("mse", 1, 2.0)])
def test_nonuniformity_matches_explicit_per_sample_hessians(loss: str, outputs: int, alpha: float | None) -> None:
    """s^2 = lambda_max((1/n) sum_i H_i^2 - H^2) with every H_i formed explicitly (Wu et al. 2018)."""
    module = _net(alpha, outputs)
    x, y = _data(outputs, loss, n=7)
    theta, scale, forward = _objective_parts(module)
    per_sample = torch.stack([
        hessian(lambda t, i=i: _data_loss(forward(t, x[i : i + 1]), y[i : i + 1], loss, scale))(theta) for i in range(len(x))
    ])
    mean = per_sample.mean(dim=0)
    covariance = torch.einsum("nij,njk->ik", per_sample, per_sample) / len(x) - mean @ mean
    expected = float(torch.linalg.eigvalsh(covariance)[-1].sqrt())
    # chunk=3 does not divide n=7: the chunked sums must cover every sample exactly once.
    s, products = nonuniformity(module, x, y, loss=loss, tol=1e-8, seed=0, chunk=3)
    assert s == pytest.approx(expected, rel=NONUNIFORMITY_RTOL)
    assert products % (3 * len(x)) == 0 and products > 0  # 3n per-sample products per matvec


def test_nonuniformity_is_zero_for_identical_samples() -> None:
    """With every sample the same, H_i = H for all i and the covariance vanishes."""
    module = _net()
    x, y = _data(1, "mse", n=1)
    s, _ = nonuniformity(module, x.repeat(5, 1), y.repeat(5, 1), tol=1e-8, seed=0)
    assert s < 1e-6 * float(top_eigenvalues(module, x, y, k=1, tol=1e-8, seed=0).values[0])


#: Double backward vs torch.func.hessian in float64: the same derivatives summed in another
#: order, so they agree to round-off (~1e-16 per flop over a few thousand flops), far below 1e-10.
HVP_RTOL = 1e-10


class _SmallCNN(torch.nn.Module):
    """conv 1->2 (3x3) - tanh - conv 2->2 (3x3, stride 2) - tanh - linear: 96 parameters."""

    def __init__(self, outputs: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(2, 2, 3, stride=2, padding=1), torch.nn.Tanh(),
            torch.nn.Flatten(), torch.nn.Linear(2 * 3 * 3, outputs),
        ).to(torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


@pytest.mark.parametrize("alpha", [None, 2.0])
@pytest.mark.parametrize(("loss", "outputs"), [("mse", 1), ("cross_entropy", 3)])
@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_double_backward_hvp_is_hessian_times_v(net: str, loss: str, outputs: int, alpha: float | None) -> None:
    """H v by double backward (Pearlmutter 1994) against torch.func.hessian(L) @ v, float64."""
    x, y = _data(outputs, loss, n=8)
    if net == "cnn":
        module: torch.nn.Module = _SmallCNN(outputs)
        x = torch.randn(8, 1, 5, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        module = OutputScaled(module, alpha) if alpha is not None else module
    else:
        module = _net(alpha, outputs)
    h = _explicit_hessian(module, x, y, loss).numpy()
    op = hessian_operator(module, x, y, loss=loss)
    v = np.random.default_rng(3).standard_normal((h.shape[0], 2))
    hv = op.matmat(v)
    assert np.linalg.norm(hv - h @ v) <= HVP_RTOL * np.linalg.norm(h @ v)
    assert op.hvps == 2  # a block of m vectors counts m products


def test_unused_parameters_have_zero_rows() -> None:
    """A parameter L does not depend on contributes zero rows and columns (and an operator with
    no parameter L depends on is zero)."""
    x, y = _data(1, "mse")
    module = _net()
    module.unused = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    h = _explicit_hessian(_net(), x, y, "mse").numpy()
    v = np.random.default_rng(0).standard_normal(h.shape[0] + 2)
    # a module's own parameters come before its submodules': "unused" is first
    np.testing.assert_allclose(hessian_operator(module, x, y).matvec(v), np.r_[0.0, 0.0, h @ v[2:]], atol=MATVEC_ATOL, rtol=0)

    class Constant(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(3, dtype=torch.float64))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(x.shape[0], 1, dtype=torch.float64)

    assert np.array_equal(hessian_operator(Constant(), x, y).matvec(np.ones(3)), np.zeros(3))


@pytest.mark.parametrize("tol", [1e-8, 1e-3])
def test_top_eigenvalue_within_tol(case, tol: float) -> None:
    """k=1 (the sharpness): the Lanczos stopping rule bounds the relative error by about tol."""
    module, x, y, loss, h = case
    exact = float(torch.linalg.eigvalsh(h)[-1])
    result = top_eigenvalues(module, x, y, k=1, tol=tol, loss=loss, seed=0)
    assert result.values[0] <= exact * (1 + 1e-12)  # a Ritz value never exceeds lambda_max
    assert result.values[0] == pytest.approx(exact, rel=max(tol, EIGEN_RTOL * 1e-4))


def test_arpack_continues_past_the_basis_cap(case) -> None:
    """With a basis cap (ncv) too small for tol=1e-8, ARPACK continues from the Ritz vectors."""
    module, x, y, loss, h = case
    exact = torch.linalg.eigvalsh(h).numpy()[::-1][:2]
    result = top_eigenvalues(module, x, y, k=2, tol=1e-8, loss=loss, seed=0, ncv=3)
    np.testing.assert_allclose(result.values, exact, rtol=EIGEN_RTOL)
    assert result.hvps > 3
