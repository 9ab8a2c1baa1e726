"""Kernel spectra, target eigen-coefficients, alignment and CKA against direct formulas.

The references form every matrix explicitly (``H = I − 11ᵀ/n``, ``Y Yᵀ``, ``X Xᵀ``) where the
implementation avoids it, so each check compares two different computations. All data are
float64 and small (n ≤ 40), so round-off is ~ n · eps ≈ 1e-14 relative; the tolerances
below are 1e-10 unless stated, loose enough for any BLAS ordering and tight enough to
catch a wrong normalisation or a missing centering (both O(1) errors).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.kernels._spectra import (
    center_kernel,
    cka,
    kernel_eigendecomposition,
    kernel_spectrum,
    kernel_target_alignment,
    linear_cka,
    target_eigencoefficients,
)

N = 30
DIM = 4
N_OUT = 3
RTOL = 1e-10


def rbf(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Gaussian kernel Gram matrix exp(-||a_i - b_j||² / 2)."""
    sq = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2 * a @ b.T
    return np.exp(-np.maximum(sq, 0.0) / 2)


def make_kernel(seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(N, DIM))
    return rbf(x, x)


def centering(n: int) -> np.ndarray:
    return np.eye(n) - np.ones((n, n)) / n


def direct_alignment(k: np.ndarray, t: np.ndarray) -> float:
    """Frobenius cosine ⟨K, T⟩ / (||K|| ||T||), forming both matrices."""
    return float(np.sum(k * t) / (np.linalg.norm(k) * np.linalg.norm(t)))


def direct_cka(k: np.ndarray, l: np.ndarray) -> float:
    """HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with HSIC = tr(K H L H) (Kornblith et al. 2019)."""
    h = centering(k.shape[0])

    def hsic(a, b):
        return np.trace(a @ h @ b @ h)

    return float(hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l)))


# ---------------------------------------------------------------- spectrum

@pytest.mark.parametrize("normalize", [True, False])
def test_spectrum_descending_and_sums_to_trace(normalize):
    kernel = make_kernel(0)
    scale = N if normalize else 1
    eigenvalues = kernel_spectrum(kernel, normalize=normalize)
    assert eigenvalues.shape == (N,)
    assert np.all(np.diff(eigenvalues) <= 0)
    assert eigenvalues.sum() == pytest.approx(np.trace(kernel) / scale, rel=RTOL)
    np.testing.assert_allclose(eigenvalues, np.sort(np.linalg.eigvals(kernel).real)[::-1] / scale, rtol=0, atol=RTOL)
    decomposed, _ = kernel_eigendecomposition(kernel, normalize=normalize)
    np.testing.assert_allclose(decomposed, eigenvalues, rtol=0, atol=RTOL)


def test_eigenvectors_orthonormal_and_diagonalise():
    kernel = make_kernel(1)
    eigenvalues, eigenvectors = kernel_eigendecomposition(kernel)
    np.testing.assert_allclose(eigenvectors.T @ eigenvectors, np.eye(N), rtol=0, atol=RTOL)
    np.testing.assert_allclose(kernel @ eigenvectors, eigenvectors * (N * eigenvalues), rtol=0, atol=RTOL)
    # Sign convention: each eigenvector's largest-magnitude entry is positive.
    pivots = np.argmax(np.abs(eigenvectors), axis=0)
    assert np.all(eigenvectors[pivots, np.arange(N)] > 0)


@pytest.mark.parametrize("shape", [(N,), (N, N_OUT)])
def test_target_eigencoefficients_sum_to_mean_square(shape):
    kernel = make_kernel(2)
    y = np.random.default_rng(3).normal(size=shape)
    coefficients = target_eigencoefficients(kernel, y)
    assert coefficients.shape == (N,)
    assert np.all(coefficients >= 0)
    assert coefficients.sum() == pytest.approx(np.sum(y**2) / N, rel=RTOL)
    if len(shape) == 2:
        per_column = sum(target_eigencoefficients(kernel, y[:, j]) for j in range(N_OUT))
        np.testing.assert_allclose(coefficients, per_column, rtol=RTOL)


def test_target_on_an_eigenvector_has_one_coefficient():
    kernel = make_kernel(4)
    _, eigenvectors = kernel_eigendecomposition(kernel)
    coefficients = target_eigencoefficients(kernel, 2.0 * eigenvectors[:, 5])
    expected = np.zeros(N)
    expected[5] = 4.0 / N
    np.testing.assert_allclose(coefficients, expected, rtol=0, atol=RTOL)


# ---------------------------------------------------------------- alignment

@pytest.mark.parametrize("shape", [(N,), (N, N_OUT)])
def test_alignment_is_one_for_target_kernel_and_scale_invariant(shape):
    y = np.random.default_rng(5).normal(size=shape)
    targets = y.reshape(N, -1)
    outer = targets @ targets.T
    assert kernel_target_alignment(outer, y) == pytest.approx(1.0, rel=RTOL)
    assert kernel_target_alignment(3.7 * outer, y) == pytest.approx(1.0, rel=RTOL)
    kernel = make_kernel(6)
    value = kernel_target_alignment(kernel, y)
    assert isinstance(value, float)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(direct_alignment(kernel, outer), rel=RTOL)
    assert kernel_target_alignment(0.01 * kernel, 5.0 * y) == pytest.approx(value, rel=RTOL)


@pytest.mark.parametrize("shape", [(N,), (N, N_OUT)])
def test_centered_alignment_matches_direct_formula(shape):
    """Cortes et al. 2012: ⟨HKH, H Y Yᵀ H⟩ / (||HKH|| ||H Y Yᵀ H||), all matrices formed."""
    kernel = make_kernel(7)
    y = np.random.default_rng(8).normal(size=shape) + 2.0  # a mean, so centering matters
    targets = y.reshape(N, -1)
    h = centering(N)
    expected = direct_alignment(h @ kernel @ h, h @ targets @ targets.T @ h)
    assert kernel_target_alignment(kernel, y, centered=True) == pytest.approx(expected, rel=RTOL)
    assert abs(kernel_target_alignment(kernel, y) - expected) > 1e-3


def test_center_kernel_matches_explicit_h():
    kernel = make_kernel(9)
    h = centering(N)
    centered = center_kernel(kernel)
    np.testing.assert_allclose(centered, h @ kernel @ h, rtol=0, atol=RTOL)
    np.testing.assert_allclose(centered.sum(axis=0), np.zeros(N), rtol=0, atol=RTOL)


# ---------------------------------------------------------------- CKA

def test_cka_matches_hsic_and_is_bounded():
    k1, k2 = make_kernel(10), make_kernel(11)
    value = cka(k1, k2)
    assert isinstance(value, float)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(direct_cka(k1, k2), rel=RTOL)
    assert cka(k1, k2) == pytest.approx(cka(k2, k1), rel=RTOL)
    assert cka(k1, k1) == pytest.approx(1.0, rel=RTOL)
    assert cka(4.0 * k1, 0.2 * k2) == pytest.approx(value, rel=RTOL)


N_FEATURES = (5, 7)  # narrower than N: the feature-space form
N_WIDE = (60, 45)  # wider than N: the Gram form


@pytest.mark.parametrize("widths", [N_FEATURES, N_WIDE])
def test_linear_cka_equals_gram_cka_and_invariances(widths):
    rng = np.random.default_rng(12)
    x = rng.normal(size=(N, widths[0]))
    y = x[:, :1] @ rng.normal(size=(1, widths[1])) + rng.normal(size=(N, widths[1]))
    value = linear_cka(x, y)
    assert isinstance(value, float)
    assert 0.0 < value < 1.0
    assert value == pytest.approx(cka(x @ x.T, y @ y.T), rel=RTOL)
    assert value == pytest.approx(direct_cka(x @ x.T, y @ y.T), rel=RTOL)
    assert linear_cka(x, x) == pytest.approx(1.0, rel=RTOL)
    rotation, _ = np.linalg.qr(rng.normal(size=(widths[0], widths[0])))
    assert linear_cka(x @ rotation, y) == pytest.approx(value, rel=RTOL)
    assert linear_cka(3.0 * x, 0.5 * y) == pytest.approx(value, rel=RTOL)
    assert linear_cka(x + 7.0, y) == pytest.approx(value, rel=RTOL)  # column centring


def test_linear_cka_flattens_trailing_axes():
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(N, 2, 3, 2)), rng.normal(size=(N, 5))
    assert linear_cka(x, y) == pytest.approx(linear_cka(x.reshape(N, -1), y), rel=RTOL)


# ---------------------------------------------------------------- inputs

def test_accepts_torch_tensors():
    kernel = make_kernel(14)
    y = np.random.default_rng(15).normal(size=N)
    kt, yt = torch.from_numpy(kernel), torch.from_numpy(y)
    # The tensors share the arrays' float64 memory, so the same algorithm sees the same values
    # (expected bit-identical); not guaranteed across buffers and BLAS paths, so a rounding-level
    # tolerance (1e-13 of the largest entry) that a lossy conversion (float32: 1e-7) would fail.
    spectrum = kernel_spectrum(kernel)
    np.testing.assert_allclose(kernel_spectrum(kt), spectrum, rtol=0, atol=1e-13 * np.abs(spectrum).max())
    coefficients = target_eigencoefficients(kernel, y)
    np.testing.assert_allclose(target_eigencoefficients(kt, yt), coefficients, rtol=0, atol=1e-13 * coefficients.max())
    assert kernel_target_alignment(kt, yt, centered=True) == pytest.approx(kernel_target_alignment(kernel, y, centered=True), rel=1e-13)
    assert cka(kt, kt.float()) == pytest.approx(1.0, rel=1e-6)  # float32 copy: rounding ~ 1e-7
    x = torch.randn(N, 6, generator=torch.Generator().manual_seed(0))
    assert linear_cka(x, x) == pytest.approx(1.0, rel=RTOL)


def _asymmetric():
    kernel = make_kernel(16)
    kernel[0, 2] += 0.1
    return kernel


def _nan():
    kernel = make_kernel(16)
    kernel[3, 3] = np.nan
    return kernel


BAD_INPUTS = [
    (kernel_spectrum, (np.ones((N, N + 1)),), ValueError, "k must be a square"),
    (kernel_spectrum, (_nan(),), ValueError, "k contains NaN"),
    (kernel_spectrum, (np.zeros((0, 0)),), ValueError, "k must hold at least one sample"),
    (kernel_eigendecomposition, (_asymmetric(),), ValueError, "k must be a symmetric Gram matrix"),
    (target_eigencoefficients, (make_kernel(16), np.ones(N + 1)), ValueError, "y must have 30 rows to match k"),
    (kernel_target_alignment, (make_kernel(16), np.ones((N, 2, 2))), ValueError, "y must have 1 or 2 dimensions"),
    (kernel_target_alignment, (make_kernel(16), np.zeros(N)), ValueError, "y is zero"),
    (center_kernel, (np.ones(N),), ValueError, "k must be a square"),
    (cka, (make_kernel(16), np.eye(N + 1)), ValueError, "k2 must have 30 rows to match k1"),
    (cka, (np.ones((N, N)), make_kernel(16)), ValueError, "k1 is zero"),
    (linear_cka, (np.ones(N), np.ones((N, 2))), ValueError, "x1 must have at least 2 dimensions"),
    (linear_cka, (np.ones((N, 2)), np.ones((N + 1, 2))), ValueError, "x2 must have 30 rows to match x1"),
    (linear_cka, (np.ones((N, 2)), np.ones((N, 2))), ValueError, "x1 is zero"),
    (linear_cka, (np.ones((N, 2)), np.full((N, 2), np.inf)), ValueError, "x2 contains NaN or infinite"),
]


@pytest.mark.parametrize(("function", "args", "error", "match"), BAD_INPUTS)
def test_bad_input_names_the_argument(function, args, error, match):
    with pytest.raises(error, match=match):
        function(*args)


def test_centered_alignment_of_constant_target_is_an_error():
    with pytest.raises(ValueError, match="y is zero"):
        kernel_target_alignment(make_kernel(17), np.full(N, 3.0), centered=True)
