"""Kernel eigen-spectra, target eigen-coefficients, kernel–target alignment and CKA.

Every function takes an ``(n, n)`` Gram matrix (numpy, torch or jax) and works in
float64. A Gram matrix must be symmetric up to round-off: an asymmetry larger than
``SYMMETRY_RTOL`` times its largest entry is an error (it usually means a
test-train block was passed where a train-train kernel was expected); smaller
asymmetry, such as float32 round-off in an empirical NTK ``J Jᵀ``, is removed by
using the symmetric part ``(K + Kᵀ)/2``.

References
----------
- Bordelon, Canatar & Pehlevan 2020, "Spectrum dependent learning curves in kernel
  regression and wide neural networks" (eigenvalues of ``K/n`` as the Nyström
  estimate of the integral operator's spectrum; target eigen-coefficients).
- Cristianini, Shawe-Taylor, Elisseeff & Kandola 2002, "On kernel-target alignment".
- Cortes, Mohri & Rostamizadeh 2012, "Algorithms for learning kernels based on
  centered alignment".
- Kornblith, Norouzi, Lee & Hinton 2019, "Similarity of neural network
  representations revisited" (CKA).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from genlab._arrays import as_numpy, check_finite, check_ndim, check_rows, check_square

__all__ = [
    "center_kernel",
    "cka",
    "kernel_eigendecomposition",
    "kernel_spectrum",
    "kernel_target_alignment",
    "linear_cka",
    "target_eigencoefficients",
]

SYMMETRY_RTOL = 1e-4
"""Largest accepted ``max|K - Kᵀ| / max|K|``.

Float32 round-off in a Gram matrix ``J Jᵀ`` with many parameters stays near
``sqrt(p) * eps32 ~ 1e-5`` relative; a matrix that is not a kernel is asymmetric at
order one.
"""


def _as_kernel(k: Any, name: str) -> np.ndarray:
    """Return the (n, n) Gram matrix ``k`` as symmetric float64, validated; errors name ``name``."""
    kernel = as_numpy(k, name, dtype=np.float64)
    check_square(kernel, name)
    if kernel.shape[0] == 0:
        raise ValueError(f"{name} must hold at least one sample; got shape {kernel.shape}")
    check_finite(kernel, name)
    scale = np.max(np.abs(kernel), initial=0.0)
    asymmetry = np.max(np.abs(kernel - kernel.T), initial=0.0)
    if asymmetry > SYMMETRY_RTOL * scale:
        raise ValueError(
            f"{name} must be a symmetric Gram matrix; max|K - K.T| = {asymmetry:.3g} "
            f"exceeds {SYMMETRY_RTOL:g} * max|K| = {SYMMETRY_RTOL * scale:.3g}"
        )
    return 0.5 * (kernel + kernel.T)


def _as_targets(y: Any, name: str, n: int, other: str) -> np.ndarray:
    """Return targets ``y`` of shape (n,) or (n, k) as float64 of shape (n, k), validated."""
    targets = as_numpy(y, name, dtype=np.float64)
    check_ndim(targets, name, (1, 2))
    check_rows(targets, name, n, other)
    check_finite(targets, name)
    return targets.reshape(n, -1)


def _eigh_descending(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and orthonormal eigenvectors (columns) of a symmetric matrix.

    Each eigenvector's sign is fixed so that its largest-magnitude entry is positive,
    which makes the output reproducible across LAPACK builds.
    """
    eigenvalues, eigenvectors = np.linalg.eigh(kernel)
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    pivots = np.argmax(np.abs(eigenvectors), axis=0)
    signs = np.sign(eigenvectors[pivots, np.arange(eigenvectors.shape[1])])
    return eigenvalues.copy(), eigenvectors * np.where(signs == 0, 1.0, signs)


def _center(kernel: np.ndarray) -> np.ndarray:
    """``H K H`` with ``H = I - 11ᵀ/n``, without forming ``H``."""
    return (
        kernel
        - kernel.mean(axis=0, keepdims=True)
        - kernel.mean(axis=1, keepdims=True)
        + kernel.mean()
    )


def _cosine(inner: float, norm_a: float, norm_b: float, names: tuple[str, str]) -> float:
    """``inner / (norm_a * norm_b)``; ValueError naming the argument whose norm is zero."""
    for norm, name in zip((norm_a, norm_b), names, strict=True):
        if norm == 0.0:
            raise ValueError(f"{name} is zero (after centering where applicable); the similarity is undefined")
    return float(inner / (norm_a * norm_b))


def kernel_eigendecomposition(k: Any, *, normalize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and orthonormal eigenvectors of a Gram matrix.

    With ``normalize=True`` the eigenvalues are those of ``K/n``, the Nyström estimate
    of the eigenvalues of the kernel's integral operator ``(T f)(x) = E_x'[k(x, x') f(x')]``
    under the data distribution (Bordelon, Canatar & Pehlevan 2020); otherwise those of
    ``K``. The eigenvectors ``V`` (columns, ``Vᵀ V = I``) are the same either way; each
    one's sign is fixed so that its largest-magnitude entry is positive.

    Args:
        k: (n, n) symmetric Gram matrix.
        normalize: divide the eigenvalues by n.

    Returns:
        ``(eigenvalues, eigenvectors)`` of shapes (n,) and (n, n), ``K V = V diag(λ)``
        (times n when ``normalize``).
    """
    kernel = _as_kernel(k, "k")
    eigenvalues, eigenvectors = _eigh_descending(kernel)
    if normalize:
        eigenvalues = eigenvalues / kernel.shape[0]
    return eigenvalues, eigenvectors


def kernel_spectrum(k: Any, *, normalize: bool = True) -> np.ndarray:
    """Eigenvalues of ``K/n`` (``normalize=True``) or of ``K``, in descending order.

    ``K/n`` gives the Nyström estimate of the integral operator's spectrum
    (Bordelon, Canatar & Pehlevan 2020); the eigenvalues of ``K/n`` sum to ``tr(K)/n``.

    Args:
        k: (n, n) symmetric Gram matrix.
        normalize: divide the eigenvalues by n.

    Returns:
        (n,) eigenvalues, largest first.
    """
    kernel = _as_kernel(k, "k")
    eigenvalues = np.linalg.eigvalsh(kernel)[::-1].copy()
    return eigenvalues / kernel.shape[0] if normalize else eigenvalues


def target_eigencoefficients(k: Any, y: Any) -> np.ndarray:
    """Squared projections of the target on the kernel's eigenvectors, ``(v_iᵀ y)² / n``.

    In the order of descending eigenvalue (the order of :func:`kernel_eigendecomposition`),
    summed over output columns when ``y`` is (n, k). They sum to ``||y||² / n``
    (Parseval), the empirical estimate of ``E[y²]``; with the spectrum of ``K/n`` they are
    the inputs of spectral learning curves (Bordelon, Canatar & Pehlevan 2020).

    Args:
        k: (n, n) symmetric Gram matrix.
        y: targets, (n,) or (n, k).

    Returns:
        (n,) non-negative coefficients.
    """
    _, eigenvectors = kernel_eigendecomposition(k)
    n = eigenvectors.shape[0]
    targets = _as_targets(y, "y", n, "k")
    return np.sum((eigenvectors.T @ targets) ** 2, axis=1) / n


def center_kernel(k: Any) -> np.ndarray:
    """Centered Gram matrix ``H K H`` with ``H = I - 11ᵀ/n``.

    The Gram matrix of the features after subtracting their mean over the n samples
    (Cortes, Mohri & Rostamizadeh 2012).

    Args:
        k: (n, n) symmetric Gram matrix.

    Returns:
        (n, n) centered Gram matrix; its rows and columns sum to zero.
    """
    return _center(_as_kernel(k, "k"))


def kernel_target_alignment(k: Any, y: Any, *, centered: bool = False) -> float:
    """Kernel–target alignment ``⟨K, Y Yᵀ⟩_F / (||K||_F ||Y Yᵀ||_F)``.

    Cristianini et al. 2002 (uncentered); with ``centered=True`` the same quantity on
    ``H K H`` and ``H Y`` (``H = I - 11ᵀ/n``), Cortes, Mohri & Rostamizadeh 2012.
    ``Y Yᵀ`` is never formed: ``⟨K, Y Yᵀ⟩_F = tr(Yᵀ K Y)`` and
    ``||Y Yᵀ||_F = ||Yᵀ Y||_F``. For a positive semi-definite ``K`` the value lies in
    [0, 1]; it is 1 when ``K`` is a positive multiple of ``Y Yᵀ``.

    Args:
        k: (n, n) symmetric Gram matrix.
        y: targets, (n,) or (n, k).
        centered: center both the kernel and the targets.

    Returns:
        The alignment, a Python float.

    Raises:
        ValueError: if ``k`` or ``y`` is zero (after centering, when ``centered``).
    """
    kernel = _as_kernel(k, "k")
    targets = _as_targets(y, "y", kernel.shape[0], "k")
    if centered:
        kernel = _center(kernel)
        targets = targets - targets.mean(axis=0)
    inner = np.sum(targets * (kernel @ targets))
    return _cosine(inner, np.linalg.norm(kernel), np.linalg.norm(targets.T @ targets), ("k", "y"))


def _cka_of_centered(k1: np.ndarray, k2: np.ndarray, names: tuple[str, str]) -> float:
    """CKA of two already-centered Gram matrices."""
    return _cosine(np.sum(k1 * k2), np.linalg.norm(k1), np.linalg.norm(k2), names)


def cka(k1: Any, k2: Any) -> float:
    """Centered kernel alignment of two Gram matrices on the same n samples.

    ``CKA(K, L) = HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with
    ``HSIC(K, L) ∝ tr(K H L H) = ⟨H K H, H L H⟩_F`` (Kornblith et al. 2019).
    In [0, 1] for positive semi-definite kernels; invariant to scaling either kernel.

    Args:
        k1: (n, n) symmetric Gram matrix.
        k2: (n, n) symmetric Gram matrix of the same samples.

    Returns:
        CKA, a Python float.

    Raises:
        ValueError: if either kernel is zero after centering.
    """
    first = _as_kernel(k1, "k1")
    second = _as_kernel(k2, "k2")
    check_rows(second, "k2", first.shape[0], "k1")
    return _cka_of_centered(_center(first), _center(second), ("k1", "k2"))


def _as_features(x: Any, name: str) -> np.ndarray:
    """Feature array (n, ...) as column-centred float64 (n, p), validated."""
    features = as_numpy(x, name, dtype=np.float64)
    if features.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions (samples, features...); got shape {features.shape}")
    check_finite(features, name)
    features = features.reshape(features.shape[0], -1)
    return features - features.mean(axis=0)


def linear_cka(x1: Any, x2: Any) -> float:
    """CKA of two feature matrices with linear kernels (Kornblith et al. 2019).

    ``CKA = ||Yᵀ X||_F² / (||Xᵀ X||_F ||Yᵀ Y||_F)`` on column-centred ``X`` (n × p1) and
    ``Y`` (n × p2); equal to ``cka(X Xᵀ, Y Yᵀ)``. Arrays with more than two dimensions
    are flattened to (n, p) over all but the first axis. The feature-space form avoids
    n × n matrices; when the features are wider than the samples it is cheaper to use
    the Gram form, and the function picks whichever needs fewer entries.
    Invariant to orthogonal transforms and isotropic scaling of either feature set.

    Args:
        x1: (n, ...) features of the n samples.
        x2: (n, ...) features of the same samples.

    Returns:
        CKA in [0, 1], a Python float.

    Raises:
        ValueError: if either feature set is constant over the samples.
    """
    first = _as_features(x1, "x1")
    second = _as_features(x2, "x2")
    check_rows(second, "x2", first.shape[0], "x1")
    n, p1 = first.shape
    p2 = second.shape[1]
    if p1 * p2 + p1 * p1 + p2 * p2 <= 2 * n * n:
        cross = np.linalg.norm(second.T @ first) ** 2
        return _cosine(cross, np.linalg.norm(first.T @ first), np.linalg.norm(second.T @ second), ("x1", "x2"))
    return _cka_of_centered(first @ first.T, second @ second.T, ("x1", "x2"))
