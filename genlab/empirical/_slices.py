"""Loss-landscape slices: filter-normalised random directions, 1D interpolations with their
barrier, and 2D planes (Li, Xu, Taylor, Studer & Goldstein 2018, "Visualizing the loss
landscape of neural nets").

The loss sliced is genlab's training objective without regularisation,

    L(theta) = loss_scale * (1/n) sum_i per_sample_loss(f(x_i; theta), y_i),

with :func:`genlab.empirical.per_sample_loss` and ``loss_scale`` the module's attribute when it
has one (1 otherwise), exactly the data term :func:`genlab.empirical.train` descends. Note that
:class:`~genlab.empirical.TrainingRun` reports the *unscaled* loss, so the two differ by
``loss_scale`` for :class:`~genlab.models.OutputScaled` modules.

theta are the module's parameters with ``requires_grad``, in ``module.named_parameters()``
order. A parameter vector is a dict name -> tensor, as
``{n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}``;
:func:`flat` and :func:`unflat` convert to and from one flat vector. The loss is evaluated at
arbitrary vectors with :func:`torch.func.functional_call` (the module is never mutated), several
vectors at once under :func:`torch.func.vmap`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from genlab.empirical._train import check_loss_targets, per_sample_loss

__all__ = [
    "barrier",
    "filter_normalized_direction",
    "flat",
    "interpolate",
    "loss_at",
    "plane",
    "trainable_parameters",
    "unflat",
]

_LOSSES = ("mse", "cross_entropy", "logistic", "squared_hinge")

#: Parameter vectors evaluated together under vmap by default.
DEFAULT_CHUNK_SIZE = 16


def trainable_parameters(module: nn.Module) -> dict[str, torch.Tensor]:
    """theta: detached clones of the parameters with ``requires_grad``, in module order."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Module; got {type(module).__name__}")
    params = {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("module has no parameters with requires_grad")
    return params


def flat(params: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """The parameters concatenated into one vector, in the dict's order."""
    if not isinstance(params, Mapping) or not params:
        raise TypeError(f"params must be a non-empty dict name -> tensor; got {type(params).__name__}")
    for name, value in params.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"params[{name!r}] must be a torch.Tensor; got {type(value).__name__}")
    return torch.cat([value.reshape(-1) for value in params.values()])


def unflat(vector: torch.Tensor, like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of :func:`flat`: ``vector`` split into ``like``'s names and shapes.

    Views into ``vector`` (no copy); works on vmapped vectors too.
    """
    if not isinstance(vector, torch.Tensor):
        raise TypeError(f"vector must be a torch.Tensor; got {type(vector).__name__}")
    if not isinstance(like, Mapping) or not like:
        raise TypeError(f"like must be a non-empty dict name -> tensor; got {type(like).__name__}")
    sizes = [value.numel() for value in like.values()]
    if vector.ndim != 1 or vector.shape[0] != sum(sizes):
        raise ValueError(f"vector must be 1-D with {sum(sizes)} entries (the size of like); got shape {tuple(vector.shape)}")
    pieces = torch.split(vector, sizes)
    return {name: piece.view(value.shape) for (name, value), piece in zip(like.items(), pieces)}


def _module_vector(module: nn.Module, params: Any, argument: str) -> torch.Tensor:
    """``params`` (dict, or flat vector) checked against the module's theta, as one flat vector
    in module order, in the module's dtype and device."""
    reference = trainable_parameters(module)
    ref = next(iter(reference.values()))
    size = sum(value.numel() for value in reference.values())
    if isinstance(params, Mapping):
        missing = [name for name in reference if name not in params]
        extra = [name for name in params if name not in reference]
        if missing or extra:
            raise ValueError(
                f"{argument} must have the module's trainable parameter names; missing {missing}, unexpected {extra}"
            )
        for name, value in reference.items():
            given = params[name]
            if not isinstance(given, torch.Tensor):
                raise TypeError(f"{argument}[{name!r}] must be a torch.Tensor; got {type(given).__name__}")
            if tuple(given.shape) != tuple(value.shape):
                raise ValueError(f"{argument}[{name!r}] must have shape {tuple(value.shape)}; got {tuple(given.shape)}")
        vector = torch.cat([params[name].detach().reshape(-1).to(ref.device, ref.dtype) for name in reference])
    elif isinstance(params, (torch.Tensor, np.ndarray)):
        vector = torch.as_tensor(params).detach().to(ref.device, ref.dtype)
        if vector.ndim != 1 or vector.shape[0] != size:
            raise ValueError(
                f"{argument} must be a dict name -> tensor or a flat vector of {size} entries; "
                f"got shape {tuple(vector.shape)}"
            )
    else:
        raise TypeError(f"{argument} must be a dict name -> tensor or a flat vector; got {type(params).__name__}")
    if not torch.all(torch.isfinite(vector)):
        raise ValueError(f"{argument} must be finite")
    return vector


def _data(module: nn.Module, x: Any, y: Any, loss: str) -> tuple[torch.Tensor, torch.Tensor]:
    if loss not in _LOSSES:
        raise ValueError(f"loss must be one of {', '.join(map(repr, _LOSSES))}; got {loss!r}")
    ref = next(iter(module.parameters()))
    xt, yt = (torch.as_tensor(a if isinstance(a, torch.Tensor) else np.asarray(a)).to(ref.device, ref.dtype) for a in (x, y))
    if xt.ndim < 1 or xt.shape[0] == 0:
        raise ValueError(f"x must have shape (n, *input_shape) with n >= 1; got {tuple(xt.shape)}")
    if yt.ndim != 2 or yt.shape[0] != xt.shape[0]:
        raise ValueError(f"y must have shape (n, k) with n = {xt.shape[0]}; got {tuple(yt.shape)}")
    check_loss_targets(yt, loss)
    return xt, yt


def _check_chunk(chunk_size: int) -> int:
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be an int >= 1; got {chunk_size!r}")
    return chunk_size


def _losses(
    module: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str,
    base: torch.Tensor,
    coefficients: torch.Tensor,
    directions: torch.Tensor,
    chunk_size: int,
) -> np.ndarray:
    """L(base + coefficients[p] @ directions) for every row p, as a float64 array.

    ``chunk_size`` vectors are formed at a time (never all P x D at once) and evaluated together
    under vmap; with ``chunk_size=1`` one at a time without vmap.
    """
    like = trainable_parameters(module)
    scale = float(getattr(module, "loss_scale", 1.0))

    def objective(vector: torch.Tensor) -> torch.Tensor:
        outputs = functional_call(module, unflat(vector, like), (x,))
        return scale * per_sample_loss(outputs, y, loss).mean()

    batched = vmap(objective)
    values: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, coefficients.shape[0], chunk_size):
            vectors = base + coefficients[start : start + chunk_size] @ directions
            if chunk_size == 1:
                values.append(objective(vectors[0]).reshape(1).cpu().double().numpy())
            else:
                values.append(batched(vectors).cpu().double().numpy())
    return np.concatenate(values)


def loss_at(module: nn.Module, params: Any, x: Any, y: Any, *, loss: str = "mse") -> float:
    """L(theta) at one parameter vector (dict name -> tensor, or flat vector); the module is not
    mutated."""
    vector = _module_vector(module, params, "params")
    xt, yt = _data(module, x, y, loss)
    one = torch.ones(1, 1, dtype=vector.dtype, device=vector.device)
    return float(_losses(module, xt, yt, loss, torch.zeros_like(vector), one, vector[None], 1)[0])


# --- filter-normalised directions -------------------------------------------------------------


def _filter_groups(module: nn.Module, names: Sequence[str]) -> tuple[list[tuple[str, str | None]], set[str]]:
    """(weight name, bias name or None) of every layer whose trainable ``.weight`` has >= 2 axes
    (output units / channels first), and the set of names so covered."""
    trainable = set(names)
    groups: list[tuple[str, str | None]] = []
    covered: set[str] = set()
    for prefix, sub in module.named_modules():
        weight = sub._parameters.get("weight")
        weight_name = f"{prefix}.weight" if prefix else "weight"
        if weight is None or weight.ndim < 2 or weight_name not in trainable or weight_name in covered:
            continue
        bias = sub._parameters.get("bias")
        bias_name: str | None = f"{prefix}.bias" if prefix else "bias"
        if bias is None or bias_name not in trainable or tuple(bias.shape) != (weight.shape[0],):
            bias_name = None
        groups.append((weight_name, bias_name))
        covered.update(n for n in (weight_name, bias_name) if n is not None)
    return groups, covered


def filter_normalized_direction(
    module: nn.Module,
    *,
    seed: int,
    orthogonal_to: Mapping[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """A random direction in theta-space, filter-normalised as Li et al. 2018 (Sec. 4).

    Draw ``d ~ N(0, I)`` (from ``seed``), then for every filter i (output unit i of a linear
    layer: row i of its (out, in) weight; output channel i of a convolution: slice i of its
    (out, in, k...) weight) rescale

        d_i <- d_i * ||theta_i|| / ||d_i||,

    where a filter *includes its bias entry*: ``[W_i, b_i]`` is one vector in both norms. Any
    module with a ``.weight`` of >= 2 axes (and optional ``.bias`` of shape (out,)) is such a
    layer: torch's ``nn.Linear`` / ``nn.ConvNd`` and genlab's ``ScaledLinear`` / ``ScaledConv``.
    Other parameters of >= 2 axes are filtered along their first axis without a bias. Parameters
    of <= 1 axis outside such layers (LayerNorm / BatchNorm scales and shifts, free biases) are
    set to zero, as Li et al. do for batch-norm parameters. Filters with ``theta_i = 0`` get
    ``d_i = 0``. Norms are of the raw parameters: the layers' multipliers ``c_w``, ``c_b`` are not
    folded in.

    With ``orthogonal_to`` (another direction, e.g. the first axis of a plane) the direction is
    then made orthogonal to it in the flat space by one Gram-Schmidt step,
    ``d <- d - (<d, o> / <o, o>) o``; the filter norms then hold only approximately (random
    directions in high dimension are nearly orthogonal already, which is why Li et al. skip it).

    Returns a dict name -> tensor shaped like the module's trainable parameters.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int; got {seed!r}")
    theta = trainable_parameters(module)
    generator = torch.Generator().manual_seed(seed)
    direction = {
        name: torch.randn(value.shape, generator=generator, dtype=value.dtype).to(value.device)
        for name, value in theta.items()
    }
    groups, covered = _filter_groups(module, list(theta))
    for name, value in theta.items():
        if name not in covered and value.ndim >= 2:
            groups.append((name, None))
            covered.add(name)
    for weight_name, bias_name in groups:
        out = theta[weight_name].shape[0]
        parts_theta = [theta[weight_name].reshape(out, -1)]
        parts_dir = [direction[weight_name].reshape(out, -1)]
        if bias_name is not None:
            parts_theta.append(theta[bias_name].reshape(out, 1))
            parts_dir.append(direction[bias_name].reshape(out, 1))
        theta_norm = torch.linalg.vector_norm(torch.cat(parts_theta, dim=1), dim=1)
        dir_norm = torch.linalg.vector_norm(torch.cat(parts_dir, dim=1), dim=1)
        factor = torch.where(theta_norm > 0, theta_norm / dir_norm, torch.zeros_like(theta_norm))
        direction[weight_name] = direction[weight_name] * factor.view((out,) + (1,) * (theta[weight_name].ndim - 1))
        if bias_name is not None:
            direction[bias_name] = direction[bias_name] * factor
    for name in theta:
        if name not in covered:
            direction[name] = torch.zeros_like(direction[name])
    if orthogonal_to is not None:
        other = _module_vector(module, orthogonal_to, "orthogonal_to")
        norm2 = torch.dot(other, other)
        if norm2 == 0:
            raise ValueError("orthogonal_to must be a nonzero direction")
        vector = flat(direction)
        direction = unflat(vector - (torch.dot(vector, other) / norm2) * other, theta)
        direction = {name: value.clone() for name, value in direction.items()}
    return direction


# --- 1D interpolation and its barrier ---------------------------------------------------------


def _check_points(points: int, minimum: int) -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points < minimum:
        raise ValueError(f"points must be an int >= {minimum}; got {points!r}")
    return points


def _check_range(value: Any, argument: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a pair (low, high) of floats; got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{argument} must be finite with low < high; got {value!r}")
    return lo, hi


def interpolate(
    module: nn.Module,
    theta_a: Any,
    theta_b: Any,
    x: Any,
    y: Any,
    *,
    loss: str = "mse",
    points: int = 25,
    t_range: tuple[float, float] = (0.0, 1.0),
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """The loss along the line ``theta(t) = (1 - t) theta_a + t theta_b``.

    ``t`` runs over ``points`` evenly spaced values of ``t_range`` (default [0, 1]; a wider range
    extrapolates past the endpoints; 0 and 1 are included exactly when they are grid points).
    Returns ``(t, losses)``, two float64 arrays of length ``points``. At ``t = 0`` and ``t = 1``
    the vectors are ``theta_a`` and ``theta_b`` exactly.
    """
    a = _module_vector(module, theta_a, "theta_a")
    b = _module_vector(module, theta_b, "theta_b")
    points = _check_points(points, 2)
    lo, hi = _check_range(t_range, "t_range")
    xt, yt = _data(module, x, y, loss)
    t = np.linspace(lo, hi, points)
    t[0], t[-1] = lo, hi
    tt = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    coefficients = torch.stack([1.0 - tt, tt], dim=1)
    losses = _losses(module, xt, yt, loss, torch.zeros_like(a), coefficients, torch.stack([a, b]), _check_chunk(chunk_size))
    return t, losses


def barrier(t: Any, losses: Any) -> float:
    """The linear-mode-connectivity barrier ``max_{t in [0,1]} [L(t) - ((1 - t) L(0) + t L(1))]``
    (Draxler et al. 2018; Frankle, Dziugaite, Roy & Carbin 2020, "Linear mode connectivity and
    the lottery ticket hypothesis"): the height of the loss path above the chord between the
    endpoints. It is >= 0 (the endpoints contribute 0), and 0 when L is convex along the line.

    ``t`` must contain 0 and 1; points outside [0, 1] (extrapolation) are ignored.
    """
    tt = np.asarray(t, dtype=float)
    ll = np.asarray(losses, dtype=float)
    if tt.ndim != 1 or ll.shape != tt.shape:
        raise ValueError(f"t and losses must be 1-D of equal length; got shapes {tt.shape} and {ll.shape}")
    if not np.all(np.isfinite(tt)) or not np.all(np.isfinite(ll)):
        raise ValueError("t and losses must be finite")
    zero, one = np.flatnonzero(tt == 0.0), np.flatnonzero(tt == 1.0)
    if zero.size == 0 or one.size == 0:
        raise ValueError("t must contain the endpoints 0 and 1 (use a grid of [0, 1] with t_range's ends on it)")
    inside = (tt >= 0.0) & (tt <= 1.0)
    l0, l1 = ll[zero[0]], ll[one[0]]
    chord = (1.0 - tt[inside]) * l0 + tt[inside] * l1
    return float(np.max(ll[inside] - chord))


# --- 2D planes --------------------------------------------------------------------------------


def _grid(lo: float, hi: float, points: int) -> np.ndarray:
    """``points`` evenly spaced values of [lo, hi], built about the midpoint so that a symmetric
    span gives an exactly antisymmetric grid (with 0 on it for odd ``points``)."""
    half_steps = (points - 1) / 2.0
    unit = (np.arange(points) - half_steps) / half_steps
    return (lo + hi) / 2.0 + (hi - lo) / 2.0 * unit


def plane(
    module: nn.Module,
    center: Any,
    d1: Any,
    d2: Any,
    x: Any,
    y: Any,
    *,
    loss: str = "mse",
    span: tuple[float, float] = (-1.0, 1.0),
    span_b: tuple[float, float] | None = None,
    points: int = 21,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The loss on the plane ``L(center + a d1 + b d2)`` (Li et al. 2018, Sec. 4).

    ``a`` runs over ``points`` evenly spaced values of ``span``, ``b`` over ``span_b`` (default
    ``span``). A symmetric span gives an exactly symmetric grid; with odd ``points`` it contains
    0, where the vector is ``center`` exactly. Returns ``(a, b, losses)`` with
    ``losses[i, j] = L(center + a[i] d1 + b[j] d2)``, shape (points, points).
    """
    c = _module_vector(module, center, "center")
    u = _module_vector(module, d1, "d1")
    v = _module_vector(module, d2, "d2")
    points = _check_points(points, 2)
    a = _grid(*_check_range(span, "span"), points)
    b = _grid(*_check_range(span if span_b is None else span_b, "span_b"), points)
    xt, yt = _data(module, x, y, loss)
    aa, bb = np.meshgrid(a, b, indexing="ij")
    coefficients = torch.as_tensor(np.stack([aa.ravel(), bb.ravel()], axis=1), dtype=c.dtype, device=c.device)
    losses = _losses(module, xt, yt, loss, c, coefficients, torch.stack([u, v]), _check_chunk(chunk_size))
    return a, b, losses.reshape(points, points)
