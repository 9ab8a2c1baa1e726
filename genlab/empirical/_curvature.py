"""Curvature of the training objective: Hessian / GGN operators, top eigenvalues, trace, density.

The objective is exactly the one :func:`genlab.empirical.train` descends (without weight decay):

    L(theta) = loss_scale * (1/n) sum_i per_sample_loss(f(x_i; theta), y_i, loss)

with :func:`~genlab.empirical._train.per_sample_loss` ("mse" is ``1/2 ||f - y||^2`` per sample)
and ``loss_scale = getattr(module, "loss_scale", 1.0)`` (``1/alpha^2`` for
:class:`~genlab.models.OutputScaled`). ``theta`` are the module's parameters with
``requires_grad``. So the top eigenvalue is directly comparable with ``2 / lr`` (edge of
stability, Cohen et al. 2021). Weight decay ``(wd/2) ||theta||^2`` is not included: it adds
``wd`` to every eigenvalue (and ``wd * P`` to the trace), which is why the threshold it is
compared with, :func:`genlab._stability.eos_threshold`, is ``2 (1 + momentum) / lr - wd``.

Two curvature matrices (``kind``):

- "hessian": ``H = d^2 L / d theta^2``;
- "ggn": the generalised Gauss-Newton ``G = J^T H_out J`` (Schraudolph 2002; Martens 2020), with
  ``J = df/dtheta`` stacked over samples and ``H_out = d^2 L / df^2`` (block diagonal over
  samples; ``loss_scale / n * I`` for "mse"). ``G`` is PSD for the three convex losses here.

Hessian-vector products are Pearlmutter's (1994) R-operator evaluated by double backward: the
gradient ``g(theta) = dL/dtheta`` is built once per operator with ``create_graph=True``, and each
product is the gradient of ``g . v``, ``H v = d(g . v)/dtheta`` (one backward pass through the
retained graph, ``retain_graph=True``), about 1.7 gradients per product on an MLP here, the
product PyHessian uses (Yao et al. 2020); curvlinops' forward-over-reverse product (``jvp`` of
``jacrev``) costs ~3. The retained graph holds the forward activations and the
backward's intermediates of the full batch (memory O(n x activations), like one training step
with ``create_graph``) for as long as the operator lives; the operator is the Hessian at the
parameters it was built at (changing them in place afterwards makes autograd refuse the next
product). GGN products come from curvlinops (Dangel et al., curvlinops-for-pytorch 3.0.1,
``GGNLinearOperator``), given our loss as the criterion so that the operator is the curvature of
*our* L (curvlinops' own ``MSELoss(reduction="mean")`` would be ``(1/(nK)) sum (f - y)^2``, i.e.
``2/K`` times our mean ``1/2 ||f - y||^2``); its ``check_deterministic`` probe (several extra
passes) is switched off: our modules are deterministic functions of the parameters.

The estimators are ours, not curvlinops', because curvlinops' ``hutchinson_trace`` and
``lanczos_approximate_spectrum`` draw from torch's global generator; here all randomness comes
from the explicit ``seed``:

- :func:`top_eigenvalues`: Lanczos with full reorthogonalisation, stopped as soon as the top
  Ritz values' error bounds reach ``tol`` (Paige 1971; Parlett 1998, ch. 10-13), with ARPACK
  (scipy ``eigsh``, ``which="LA"``) only past the basis cap;
- :func:`hessian_trace`: Hutchinson's estimator with Rademacher probes (Hutchinson 1990);
- :func:`spectral_density`: stochastic Lanczos quadrature with Gaussian broadening (Lin, Saad &
  Yang 2016; Ghorbani, Krishnan & Xiao 2019);
- :func:`nonuniformity`: the SGD non-uniformity ``s = sqrt(lambda_max((1/n) sum_i H_i^2 - H^2))``
  of Wu, Ma & E (2018), with per-sample Hessians ``H_i`` of ``loss_scale * per_sample_loss_i``
  (so that ``H = (1/n) sum_i H_i``), by Lanczos on per-sample Hessian-vector products (torch.func
  ``jvp`` of ``grad`` under ``vmap``; curvlinops has no per-sample operator).

scipy's solver and torch's products alternate; OpenBLAS threads left spinning by scipy slow
torch 2-3x on small machines, so the solver runs under ``threadpool_limits(1, "blas")``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh
from torch import nn

from genlab.empirical._train import per_sample_loss

__all__ = [
    "Eigenvalues",
    "KINDS",
    "LOSSES",
    "CurvatureOperator",
    "density_from_nodes",
    "hessian_operator",
    "hessian_trace",
    "nonuniformity",
    "slq_nodes",
    "spectral_density",
    "top_eigenvalues",
]

LOSSES = ("mse", "cross_entropy", "logistic", "squared_hinge")
KINDS = ("hessian", "ggn")


@dataclass(frozen=True)
class Eigenvalues:
    """Result of :func:`top_eigenvalues`.

    Attributes:
        values: (k,) the algebraically largest eigenvalues, descending.
        hvps: number of curvature-vector products the solver used (the cost, in products).
    """

    values: np.ndarray
    hvps: int


class _ObjectiveLoss(nn.Module):
    """Our criterion ``loss_scale * mean_i per_sample_loss``, in curvlinops' criterion form.

    ``reduction = "mean"``: curvlinops weights each batch's value by ``batch / n``, which is 1
    for the single full batch used here.
    """

    reduction = "mean"

    def __init__(self, loss: str, scale: float) -> None:
        super().__init__()
        self.loss = loss
        self.scale = scale

    def forward(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.scale * per_sample_loss(outputs, targets, self.loss).mean()


class _DoubleBackwardHessian:
    """``V -> H V`` for the objective L at the current parameters, by double backward.

    Pearlmutter (1994): ``H v = d/dtheta (g(theta) . v)`` with ``g = dL/dtheta``. ``g`` is built
    once here with ``create_graph=True``; each column is one backward pass through that graph
    (``retain_graph=True`` keeps it for the next column). Parameters that L does not depend on,
    and gradient pieces that do not depend on theta (L linear in them), contribute zero rows.
    The retained graph (activations and backward intermediates of the batch) lives as long as
    this operator.
    """

    def __init__(self, module: nn.Module, params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, loss: str) -> None:
        scale = float(getattr(module, "loss_scale", 1.0))
        with torch.enable_grad():
            value = scale * per_sample_loss(module(x), y, loss).mean()
            grads = (
                torch.autograd.grad(value, params, create_graph=True, allow_unused=True)
                if value.requires_grad
                else (None,) * len(params)
            )
        self._params = params
        self._sizes = [p.numel() for p in params]
        self._live = [(i, g) for i, g in enumerate(grads) if g is not None and g.requires_grad]

    def __matmul__(self, vectors: torch.Tensor) -> torch.Tensor:
        """(P, m) -> (P, m): one backward pass per column.

        Each pass differentiates the scalar ``g . v`` rather than passing ``v`` as
        ``grad_outputs``: the same products, but torch checks explicit ``grad_outputs`` with its
        symbolic-shape module, whose first import (sympy) costs ~0.4 s in a fresh process.
        """
        if not self._live:  # L is linear in theta: H = 0
            return torch.zeros_like(vectors)
        columns = []
        for column in vectors.unbind(dim=1):
            pieces = column.split(self._sizes)
            with torch.enable_grad():
                dot = sum((g * pieces[i].view_as(g)).sum() for i, g in self._live)
            products = torch.autograd.grad(dot, self._params, retain_graph=True, allow_unused=True, materialize_grads=True)
            columns.append(torch.cat([h.reshape(-1) for h in products]))
        return torch.stack(columns, dim=1)


class CurvatureOperator(LinearOperator):
    """A scipy LinearOperator (float64 in and out) applying a torch curvature operator
    (anything with ``op @ V`` for a (P, m) tensor ``V``).

    Vectors are cast to the module's dtype for the product. ``hvps`` counts the products
    applied so far (a matrix of m columns counts m).
    """

    def __init__(self, torch_operator: Any, size: int, dtype: torch.dtype, device: torch.device) -> None:
        super().__init__(dtype=np.dtype(np.float64), shape=(size, size))
        self._op = torch_operator
        self._torch_dtype = dtype
        self._device = device
        self.hvps = 0

    def apply(self, vectors: torch.Tensor) -> torch.Tensor:
        """(P, m) -> (P, m) in the module's dtype and device, counted like ``matmat``."""
        self.hvps += vectors.shape[1]
        with torch.no_grad():
            return self._op @ vectors.to(self._device, self._torch_dtype)

    def _matmat(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        out = self.apply(torch.as_tensor(X))
        return out.detach().cpu().numpy().astype(np.float64).reshape(X.shape)

    def _matvec(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        return self._matmat(x.reshape(-1, 1)).reshape(x.shape)

    def _rmatvec(self, x: np.ndarray) -> np.ndarray:
        return self._matvec(x)  # symmetric

    def _adjoint(self) -> "CurvatureOperator":
        return self


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Limit BLAS to one thread around scipy solvers (see the module docstring)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with threadpool_limits(1, "blas"):
        yield


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
    return int(seed)


def _check_positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)


def _objective_data(module: nn.Module, x: Any, y: Any, loss: str) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """The trainable parameters and (x, y) as tensors of their dtype and device, after checking
    the arguments every curvature function shares (loss name, shapes, targets of the loss)."""
    _check_choice("loss", loss, LOSSES)
    if not isinstance(module, nn.Module):
        raise ValueError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    params = [p for p in module.parameters() if p.requires_grad]
    if not params:
        raise ValueError("module has no parameters with requires_grad")
    device, dtype = params[0].device, params[0].dtype
    as_tensor = lambda a: (a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))).to(device, dtype)  # noqa: E731
    xt, yt = as_tensor(x), as_tensor(y)
    if yt.ndim != 2:
        raise ValueError(f"y must have shape (n, K); got {tuple(yt.shape)}")
    if xt.shape[0] != yt.shape[0]:
        raise ValueError(f"x and y must have the same number of rows; got {xt.shape[0]} and {yt.shape[0]}")
    if xt.shape[0] == 0:
        raise ValueError("x must have at least one row")
    if loss in ("logistic", "squared_hinge") and (yt.shape[1] != 1 or not torch.all(yt.abs() == 1)):
        raise ValueError(f"y for loss {loss!r} must be one column with values in {{-1, +1}}")
    if loss == "cross_entropy" and (yt.shape[1] < 2 or not torch.all((yt == 0) | (yt == 1))):
        raise ValueError("y for loss 'cross_entropy' must be one-hot with >= 2 columns")
    return params, xt, yt


def hessian_operator(
    module: nn.Module, x: Any, y: Any, *, loss: str = "mse", kind: str = "hessian"
) -> CurvatureOperator:
    """The (P, P) curvature of the training objective L on the full batch (x, y), as an operator.

    Args:
        module: the network; its parameters with ``requires_grad`` are ``theta`` (P in all),
            its ``loss_scale`` attribute (default 1) multiplies the loss.
        x, y: (n, *input_shape) inputs and (n, K) targets (numpy or torch); cast to the
            module's dtype and device.
        loss: "mse", "cross_entropy", "logistic" or "squared_hinge"
            (:func:`~genlab.empirical.per_sample_loss`; the squared hinge's Hessian is piecewise
            constant in the margin, defined wherever no margin is exactly 1).
        kind: "hessian" (``d^2 L / d theta^2``, double-backward products on a graph built here:
            one forward and one backward pass now, memory O(n x activations) while the
            operator lives) or "ggn" (``J^T H_out J``, curvlinops).

    Returns:
        A scipy ``LinearOperator`` taking and returning float64 vectors in the order of
        ``[p.flatten() for p in module.parameters() if p.requires_grad]``; its ``hvps``
        attribute counts the products applied.
    """
    _check_choice("kind", kind, KINDS)
    params, xt, yt = _objective_data(module, x, y, loss)

    if kind == "hessian":
        op: Any = _DoubleBackwardHessian(module, params, xt, yt, loss)
    else:
        from curvlinops import GGNLinearOperator

        criterion = _ObjectiveLoss(loss, float(getattr(module, "loss_scale", 1.0)))
        op = GGNLinearOperator(module, criterion, params, [(xt, yt)], check_deterministic=False)
    size = sum(p.numel() for p in params)
    return CurvatureOperator(op, size, params[0].dtype, params[0].device)


#: ARPACK's floor on ``|theta|`` in its convergence test (dsconv): ``eps^(2/3)``.
_EPS23 = float(np.finfo(np.float64).eps) ** (2.0 / 3.0)
#: DGKS criterion (Daniel, Gragg, Kaufman & Stewart 1976, as in ARPACK's dgetv0/dsaitr): a
#: second Gram-Schmidt pass only when the first removed more than 1 - 1/sqrt(2) of the norm.
_DGKS = 1.0 / math.sqrt(2.0)


def _lanczos_top(op: CurvatureOperator, v0: np.ndarray, k: int, tol: float, steps: int) -> tuple[np.ndarray | None, np.ndarray]:
    """Lanczos with full reorthogonalisation from ``v0``, stopped at the first step where each of
    the ``k`` largest Ritz values ``theta_i`` has an error bound ``min(r_i, r_i^2 / gap_i) <=
    tol * max(|theta_i|, eps^(2/3))``, or where the Krylov space is invariant (``beta_j`` ~ 0:
    the Ritz values are eigenvalues).

    ``r_i = |beta_j u_i[j]| = ||H y_i - theta_i y_i||`` is the residual of the Ritz pair, so some
    eigenvalue lies within ``r_i`` of ``theta_i`` (Paige 1971; Parlett 1998, ch. 13); when
    that eigenvalue is separated from the rest of the spectrum by ``gap_i``, it lies within
    ``r_i^2 / gap_i`` (the Kato-Temple inequality; Parlett 1998, ch. 10). ``gap_i`` is taken as the
    distance to the nearest other Ritz value, the refined bound of Parlett & Nour-Omid (1985)
    used by Lanczos codes such as PROPACK (an estimate: an eigenvalue no Ritz value has yet
    approached would make the true gap smaller). The floor ``eps^(2/3)`` is ARPACK's (dsconv).

    Returns ``(values, start)``: the k largest Ritz values, descending, or ``None`` if ``steps``
    steps did not meet the test (or the space became invariant with fewer than k values); then
    ``start`` is the sum of the k top Ritz vectors, from which ARPACK continues.

    The Lanczos vectors live in torch, in the products' dtype and device: float32 products carry
    float32 round-off anyway, and the reorthogonalisation (O(j P) per step, the solver's cost
    besides the products) then runs on torch's threads, not on BLAS threads that would spin
    against torch's (see the module docstring).
    """
    size = v0.shape[0]
    basis = torch.empty((steps, size), dtype=op._torch_dtype, device=op._device)
    alpha: list[float] = []
    beta: list[float] = []
    q = torch.as_tensor(v0 / np.linalg.norm(v0)).to(basis)
    for j in range(steps):
        basis[j] = q
        w = op.apply(q[:, None])[:, 0]
        alpha.append(float(q @ w))
        w -= alpha[-1] * q  # the three-term recurrence removes the large components ...
        if j > 0:
            w -= beta[-1] * basis[j - 1]
        norm = float(torch.linalg.vector_norm(w))
        for _ in range(2):  # ... and classical Gram-Schmidt the round-off ones, twice at most (DGKS)
            w -= basis[: j + 1].T @ (basis[: j + 1] @ w)
            previous, norm = norm, float(torch.linalg.vector_norm(w))
            if norm > _DGKS * previous:
                break
        theta, u = np.linalg.eigh(np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1))
        top = slice(-1, -min(k, j + 1) - 1, -1)
        residual = norm * np.abs(u[-1, top])
        if j == 0:  # a single Ritz value: no gap yet
            bound = residual
        else:
            gap = np.array([np.delete(np.abs(theta - t), i).min() for i, t in enumerate(theta)])[top]
            bound = np.minimum(residual, residual**2 / np.maximum(gap, np.finfo(np.float64).tiny))
        invariant = norm <= 1e-12 * max(float(np.abs(theta).max()), 1.0)
        done = j + 1 >= k and (invariant or bool(np.all(bound <= tol * np.maximum(np.abs(theta[top]), _EPS23))))
        if done or invariant or j == steps - 1:
            break
        beta.append(norm)
        q = w / norm
    start = (basis[: j + 1].T @ torch.as_tensor(u[:, top].sum(axis=1)).to(basis)).cpu().numpy().astype(np.float64)
    return (theta[top].copy() if done else None), start


def top_eigenvalues(
    module: nn.Module,
    x: Any,
    y: Any,
    *,
    k: int = 1,
    tol: float = 1e-3,
    loss: str = "mse",
    kind: str = "hessian",
    seed: int,
    ncv: int | None = None,
) -> Eigenvalues:
    """The ``k`` algebraically largest eigenvalues of the curvature of L (the sharpness for k=1).

    Lanczos with full reorthogonalisation (:func:`_lanczos_top`) on :func:`hessian_operator`,
    started from a Gaussian vector drawn from ``seed`` and checked after every product, stops
    when every top Ritz value's error bound ``min(r, r^2 / gap)`` (residual ``r = ||H v - theta
    v||``, Ritz gap ``gap``) is at most ``tol * |theta|``: the eigenvalues are accurate to about
    ``tol`` relative. Unrestarted Lanczos reaches that in fewer products than implicitly restarted
    Lanczos with a small basis (nothing is discarded, no test waits for a restart cycle), and
    than power iteration (Krylov optimality: Kuczynski & Wozniakowski 1992). If ``ncv`` steps do
    not suffice, ARPACK (scipy ``eigsh(which="LA")``, basis ``ncv``, its residual test
    ``r <= tol * |theta|``) continues from the sum of the top Ritz vectors.

    Args:
        k: number of eigenvalues, 1 <= k < P.
        tol: relative tolerance on the eigenvalues, > 0.
        seed: seeds the starting vector (the only randomness).
        ncv: Lanczos basis cap (memory ``ncv * P`` numbers of the module's dtype); default
            ``min(P, 20 + 4k)`` (a top eigenvalue takes 5-10 products on the benchmark nets, the
            top 10 about 50).

    Returns:
        :class:`Eigenvalues` with ``values`` (k,) descending and the number of products used.
    """
    k = _check_int("k", k, 1)
    tol = _check_positive("tol", tol)
    seed = _check_seed(seed)
    op = hessian_operator(module, x, y, loss=loss, kind=kind)
    size = op.shape[0]
    if k >= size:
        raise ValueError(f"k must be < the number of parameters {size}; got {k}")
    if ncv is None:
        ncv = min(size, 20 + 4 * k)
    ncv = _check_int("ncv", ncv, k + 1)
    if ncv > size:
        raise ValueError(f"ncv must be <= the number of parameters {size}; got {ncv}")
    v0 = np.random.default_rng(seed).standard_normal(size)
    with _one_blas_thread():
        values, start = _lanczos_top(op, v0, k, tol, ncv)
        if values is None:
            values = eigsh(op, k=k, which="LA", ncv=ncv, tol=tol, v0=start, return_eigenvectors=False)
    return Eigenvalues(values=np.sort(np.asarray(values, dtype=np.float64))[::-1].copy(), hvps=op.hvps)


def hessian_trace(
    module: nn.Module,
    x: Any,
    y: Any,
    *,
    samples: int = 100,
    seed: int,
    loss: str = "mse",
    kind: str = "hessian",
    block: int = 16,
) -> tuple[float, float]:
    """Hutchinson's estimate of ``tr H`` and its standard error (Hutchinson 1990).

    ``tr H = E[z^T H z]`` for Rademacher ``z`` (entries +-1 with probability 1/2); the estimate is
    the mean of ``samples`` such quadratic forms and the standard error their sample standard
    deviation over ``sqrt(samples)``. The Rademacher variance is ``2 sum_{i != j} H_ij^2``
    (the smallest among i.i.d. probe distributions).

    Args:
        samples: number of probes (>= 2, for the standard error); ``samples`` products.
        seed: seeds the probes (the only randomness).
        block: probes multiplied at once (memory ~ block times one product's).

    Returns:
        (estimate, standard_error).
    """
    samples = _check_int("samples", samples, 2)
    block = _check_int("block", block, 1)
    seed = _check_seed(seed)
    op = hessian_operator(module, x, y, loss=loss, kind=kind)
    size = op.shape[0]
    rng = np.random.default_rng(seed)
    forms = np.empty(samples)
    for start in range(0, samples, block):
        m = min(block, samples - start)
        z = rng.integers(0, 2, size=(size, m)).astype(np.float64) * 2.0 - 1.0
        forms[start : start + m] = np.einsum("ij,ij->j", z, op.matmat(z))
    return float(forms.mean()), float(forms.std(ddof=1) / math.sqrt(samples))


def _lanczos(op: LinearOperator, v0: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """``steps`` Lanczos steps from ``v0`` with full reorthogonalisation: the tridiagonal's
    diagonal ``alpha`` and off-diagonal ``beta``; stops early on an invariant subspace."""
    size = v0.shape[0]
    basis = np.empty((steps, size))
    alpha, beta = [], []
    q = v0 / np.linalg.norm(v0)
    for j in range(steps):
        basis[j] = q
        w = op.matvec(q)
        a = float(q @ w)
        alpha.append(a)
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)  # full reorthogonalisation, twice
        w = w - basis[: j + 1].T @ (basis[: j + 1] @ w)
        b = float(np.linalg.norm(w))
        if j == steps - 1 or b <= 1e-12 * max(abs(a), 1.0):
            break
        beta.append(b)
        q = w / b
    return np.array(alpha), np.array(beta)


def spectral_density(
    module: nn.Module,
    x: Any,
    y: Any,
    *,
    vectors: int = 4,
    steps: int = 80,
    seed: int,
    grid: Any = None,
    points: int = 1024,
    sigma: float | None = None,
    loss: str = "mse",
    kind: str = "hessian",
) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalue density of the curvature by stochastic Lanczos quadrature (SLQ).

    For a unit Gaussian start ``v``, ``steps`` Lanczos steps give a tridiagonal ``T`` with
    eigenpairs ``(theta_j, u_j)``; ``sum_j u_j[0]^2 delta(t - theta_j)`` is the Gauss quadrature
    of ``v^T delta(t - H) v``, whose expectation is the density ``(1/P) sum_i delta(t - lambda_i)``
    (Lin, Saad & Yang 2016). Averaging over ``vectors`` starts and replacing each delta by a
    Gaussian of width ``sigma`` gives the estimate (Ghorbani, Krishnan & Xiao 2019). The nodes
    include the extreme Ritz values, which converge first, so the support reaches the true
    extreme eigenvalues.

    Args:
        vectors: number of random starts (``vectors * steps`` products).
        steps: Lanczos steps per start, clipped to P.
        seed: seeds the starts (the only randomness).
        grid: 1-D increasing evaluation points; default ``points`` equally spaced over
            ``[min node - 5 sigma, max node + 5 sigma]``.
        sigma: Gaussian width; default 1% of the span of the nodes.

    Returns:
        (grid, density), the density normalised to integrate to 1 on the grid (trapezoid rule;
        mass of the Gaussians outside a user grid is dropped before normalising).
    """
    points = _check_int("points", points, 2)
    if sigma is not None:
        sigma = _check_positive("sigma", sigma)
    if grid is not None:
        grid = np.asarray(grid, dtype=np.float64)
        if grid.ndim != 1 or grid.size < 2 or not np.all(np.diff(grid) > 0) or not np.all(np.isfinite(grid)):
            raise ValueError("grid must be a 1-D increasing array of >= 2 finite points")
    node, weight = slq_nodes(module, x, y, vectors=vectors, steps=steps, seed=seed, loss=loss, kind=kind)
    return density_from_nodes(node, weight, grid=grid, points=points, sigma=sigma)


def slq_nodes(
    module: nn.Module,
    x: Any,
    y: Any,
    *,
    vectors: int = 4,
    steps: int = 80,
    seed: int,
    loss: str = "mse",
    kind: str = "hessian",
) -> tuple[np.ndarray, np.ndarray]:
    """The quadrature of :func:`spectral_density` before broadening: Ritz values ``theta_j`` of
    every start and weights ``u_j[0]^2 / vectors`` (summing to 1), so that ``sum_j w_j g(theta_j)``
    estimates ``(1/P) tr g(H)``, e.g. the fraction of eigenvalues above a threshold."""
    vectors = _check_int("vectors", vectors, 1)
    steps = _check_int("steps", steps, 1)
    seed = _check_seed(seed)
    op = hessian_operator(module, x, y, loss=loss, kind=kind)
    size = op.shape[0]
    steps = min(steps, size)
    rng = np.random.default_rng(seed)
    nodes, weights = [], []
    with _one_blas_thread():
        for _ in range(vectors):
            alpha, beta = _lanczos(op, rng.standard_normal(size), steps)
            tri = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
            theta, u = np.linalg.eigh(tri)
            nodes.append(theta)
            weights.append(u[0] ** 2 / vectors)
    return np.concatenate(nodes), np.concatenate(weights)


def density_from_nodes(
    node: np.ndarray, weight: np.ndarray, *, grid: Any = None, points: int = 1024, sigma: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian broadening of the quadrature ``(node, weight)`` (see :func:`spectral_density`):
    ``(grid, density)`` with the density normalised to integrate to 1 on the grid."""
    if sigma is None:
        span = float(node.max() - node.min())
        sigma = 0.01 * span if span > 0 else 1e-3 * max(abs(float(node.max())), 1.0)
    if grid is None:
        grid = np.linspace(node.min() - 5 * sigma, node.max() + 5 * sigma, points)
    density = np.zeros_like(grid)
    for start in range(0, node.size, 256):
        t = (grid[:, None] - node[None, start : start + 256]) / sigma
        density += np.exp(-0.5 * t**2) @ weight[start : start + 256]
    density /= sigma * math.sqrt(2 * math.pi)
    mass = float(np.trapezoid(density, grid))
    if not mass > 0:
        raise ValueError("grid holds no mass of the density; widen it or increase sigma")
    return grid, density / mass


class _NonUniformityOperator(LinearOperator):
    """``v -> (1/n) sum_i H_i (H_i v) - H (H v)``, the covariance of the per-sample Hessians
    applied to ``v`` (PSD: it is ``(1/n) sum_i (H_i - H)^2``). One product costs 3n per-sample
    Hessian-vector products (the ``H_i v``, whose mean is ``H v``; the ``H_i (H_i v)``; and the
    ``H_i (H v)``, whose mean is ``H (H v)``), in chunks of ``chunk`` samples."""

    def __init__(self, module: nn.Module, x: torch.Tensor, y: torch.Tensor, loss: str, chunk: int) -> None:
        from torch.func import functional_call, grad, jvp, vmap

        self._names = [n for n, p in module.named_parameters() if p.requires_grad]
        params = {n: p.detach() for n, p in module.named_parameters() if p.requires_grad}
        self._shapes = [params[n].shape for n in self._names]
        self._sizes = [params[n].numel() for n in self._names]
        size = sum(self._sizes)
        super().__init__(dtype=np.dtype(np.float64), shape=(size, size))
        self._params, self._x, self._y, self._chunk = params, x, y, chunk
        self._dtype, self._device = x.dtype, x.device
        scale = float(getattr(module, "loss_scale", 1.0))
        self.hvps = 0

        def sample_loss(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
            out = functional_call(module, p, (xi.unsqueeze(0),))
            return scale * per_sample_loss(out, yi.unsqueeze(0), loss)[0]

        def sample_hvp(xi: torch.Tensor, yi: torch.Tensor, v: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            return jvp(lambda p: grad(sample_loss)(p, xi, yi), (self._params,), (v,))[1]

        self._hvps = vmap(sample_hvp, in_dims=(0, 0, 0))

    def _unflat(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """(m, P) -> name -> (m, *shape)."""
        parts = torch.split(flat, self._sizes, dim=1)
        return {n: part.reshape(flat.shape[0], *shape) for n, part, shape in zip(self._names, parts, self._shapes)}

    def _flat(self, tree: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([tree[n].reshape(tree[n].shape[0], -1) for n in self._names], dim=1)

    def _per_sample(self, vectors: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """(stop - start, P): H_i vectors[i - start] for the samples i in [start, stop)."""
        self.hvps += stop - start
        return self._flat(self._hvps(self._x[start:stop], self._y[start:stop], self._unflat(vectors)))

    def _matvec(self, v: np.ndarray) -> np.ndarray:
        n = self._x.shape[0]
        vt = torch.as_tensor(np.asarray(v).reshape(-1), device=self._device).to(self._dtype)
        second_moment = torch.zeros_like(vt)
        mean = torch.zeros_like(vt)
        with torch.no_grad():
            for start in range(0, n, self._chunk):
                stop = min(n, start + self._chunk)
                hv = self._per_sample(vt.expand(stop - start, -1), start, stop)
                mean += hv.sum(dim=0)
                second_moment += self._per_sample(hv, start, stop).sum(dim=0)
            mean /= n
            squared_mean = torch.zeros_like(vt)
            for start in range(0, n, self._chunk):
                stop = min(n, start + self._chunk)
                squared_mean += self._per_sample(mean.expand(stop - start, -1), start, stop).sum(dim=0)
        out = second_moment / n - squared_mean / n
        return out.cpu().numpy().astype(np.float64).reshape(np.shape(v))

    def _rmatvec(self, v: np.ndarray) -> np.ndarray:
        return self._matvec(v)  # symmetric


def nonuniformity(
    module: nn.Module,
    x: Any,
    y: Any,
    *,
    loss: str = "mse",
    tol: float = 1e-3,
    seed: int,
    chunk: int = 64,
) -> tuple[float, int]:
    """The SGD non-uniformity ``s`` of Wu, Ma & E (2018) at the module's parameters.

    With ``L = (1/n) sum_i L_i`` (``L_i = loss_scale * per_sample_loss_i``) and ``H_i`` the
    Hessian of ``L_i``, ``s^2 = lambda_max((1/n) sum_i H_i^2 - H^2)``: how much the curvature
    seen by a single sample varies around the full-batch curvature ``H``. SGD with step ``eta``
    and batch ``B`` (without replacement from ``n``) can only stay in minima with
    ``(1 - eta a)^2 + eta^2 (n - B) / (B (n - 1)) s^2 <= 1`` (genlab.theory.landscape).

    Args:
        module, x, y, loss: as for :func:`hessian_operator`.
        tol: ARPACK's relative tolerance on ``s^2``.
        seed: seeds the Lanczos start (the only randomness).
        chunk: samples whose Hessian-vector products are taken at once (memory ~ chunk * P).

    Returns:
        ``(s, products)``: the non-uniformity and the number of per-sample Hessian-vector
        products used.
    """
    tol = _check_positive("tol", tol)
    seed = _check_seed(seed)
    chunk = _check_int("chunk", chunk, 1)
    params, xt, yt = _objective_data(module, x, y, loss)
    size = sum(p.numel() for p in params)
    if size < 2:
        raise ValueError("the module needs at least 2 parameters")
    cov = _NonUniformityOperator(module, xt, yt, loss, chunk)
    v0 = np.random.default_rng(seed).standard_normal(size)
    with _one_blas_thread():
        top = eigsh(cov, k=1, which="LA", ncv=min(size, 6), tol=tol, v0=v0, return_eigenvectors=False)
    return float(math.sqrt(max(float(top[0]), 0.0))), cov.hvps
