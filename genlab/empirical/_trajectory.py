"""Optimizer trajectories: parameter snapshots taken during :func:`genlab.empirical.train`, their
length and straightness, their principal components, and the loss on the PCA plane (Li, Xu,
Taylor, Studer & Goldstein 2018, "Visualizing the loss landscape of neural nets", Sec. 6;
Lorch 2016, "Visualizing deep network training trajectories with PCA").

Snapshots are flat parameter vectors (float64 numpy arrays) in the layout of
:func:`genlab.empirical._slices.flat`: the module's parameters with ``requires_grad`` in
``module.named_parameters()`` order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from genlab.empirical._slices import _check_range, flat, plane, trainable_parameters
from genlab.empirical._train import Hook

__all__ = ["Snapshots", "TrajectoryStats", "pca_plane", "snapshot_hook", "trajectory_statistics"]


class Snapshots(list):  # type: ignore[type-arg]
    """The list of flat float64 parameter vectors a :func:`snapshot_hook` fills, with ``steps``:
    the training step of each."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []


def snapshot_hook(every: int = 1) -> tuple[Hook, Snapshots]:
    """A training hook storing theta at every ``every``-th *measured* step, and its list.

    Pass the hook to ``train(..., hooks=[hook])``: it is called at the measured steps (0, every
    ``measurement_interval``, and the last), and stores a detached float64 copy of the flat
    theta at measured steps 0, ``every``, ``2 every``, ... (so the last step is stored only when
    it falls on that pattern). It returns ``{}``: a marker recorded at only some steps would not
    line up with ``TrainingRun.steps``; the stored steps are in ``snapshots.steps`` instead.
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every must be an int >= 1; got {every!r}")
    snapshots = Snapshots()
    calls = [0]

    def hook(step: int, module: nn.Module) -> dict[str, float]:
        if calls[0] % every == 0:
            with torch.no_grad():
                snapshots.append(flat(trainable_parameters(module)).cpu().double().numpy())
            snapshots.steps.append(int(step))
        calls[0] += 1
        return {}

    return hook, snapshots


@dataclass(frozen=True)
class TrajectoryStats:
    """Geometry of a trajectory theta_0, ..., theta_{K-1} (K snapshots in a D-dim flat space).

    Attributes:
        path_length: sum_k ||theta_{k+1} - theta_k||.
        distance: ||theta_{K-1} - theta_0||, the distance travelled from init.
        straightness: distance / path_length, in [0, 1] (1 for a straight path; NaN when the
            path has length 0).
        explained_variance_ratio: (min(K, D),) s_j^2 / sum s^2 of the singular values s of the
            centred snapshots (theta_k minus their mean), largest first.
        components: (2, D) the top two principal directions, unit norm (sign fixed so that the
            entry of largest magnitude is positive).
        projections: (K, 2) ``(theta_k - theta_{K-1}) . components``: the snapshots relative to
            the final point, as Li et al. plot them.
    """

    path_length: float
    distance: float
    straightness: float
    explained_variance_ratio: np.ndarray
    components: np.ndarray
    projections: np.ndarray


def _as_matrix(snapshots: Any) -> np.ndarray:
    if isinstance(snapshots, (np.ndarray, torch.Tensor)):
        rows = [snapshots[k] for k in range(len(snapshots))] if np.ndim(snapshots) == 2 else None
    elif isinstance(snapshots, Sequence) and not isinstance(snapshots, (str, bytes)):
        rows = list(snapshots)
    else:
        rows = None
    if rows is None:
        raise TypeError(f"snapshots must be a sequence of flat vectors or a (K, D) array; got {type(snapshots).__name__}")
    matrix_rows = []
    for k, row in enumerate(rows):
        vector = row.detach().cpu().double().numpy() if isinstance(row, torch.Tensor) else np.asarray(row, dtype=float)
        if vector.ndim != 1:
            raise ValueError(f"snapshots[{k}] must be a flat (1-D) vector; got shape {vector.shape}")
        matrix_rows.append(vector)
    if len(matrix_rows) < 2:
        raise ValueError(f"snapshots must hold >= 2 vectors; got {len(matrix_rows)}")
    sizes = {v.shape[0] for v in matrix_rows}
    if len(sizes) != 1:
        raise ValueError(f"snapshots must all have the same length; got lengths {sorted(sizes)}")
    matrix = np.stack(matrix_rows)
    if matrix.shape[1] < 2:
        raise ValueError(f"snapshots must have >= 2 parameters for a 2-component PCA; got {matrix.shape[1]}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError("snapshots must be finite")
    return matrix


def trajectory_statistics(snapshots: Any) -> TrajectoryStats:
    """Path length, distance from init, straightness and PCA of a trajectory (see
    :class:`TrajectoryStats`). ``snapshots`` is a sequence of K >= 2 flat vectors (numpy or
    torch, e.g. from :func:`snapshot_hook`) or a (K, D) array.

    PCA is the SVD ``Theta - mean = U S V^T`` of the centred (K, D) snapshot matrix
    (Lorch 2016; Li et al. 2018, Sec. 6); the rows of V^T are the principal directions.
    """
    theta = _as_matrix(snapshots)
    steps = np.linalg.norm(np.diff(theta, axis=0), axis=1)
    path_length = float(steps.sum())
    distance = float(np.linalg.norm(theta[-1] - theta[0]))
    straightness = distance / path_length if path_length > 0 else float("nan")
    centred = theta - theta.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    total = float(np.sum(singular**2))
    ratio = singular**2 / total if total > 0 else np.zeros_like(singular)
    components = vt[:2].copy()
    for row in components:
        if row[np.argmax(np.abs(row))] < 0:
            row *= -1.0
    projections = (theta - theta[-1]) @ components.T
    return TrajectoryStats(
        path_length=path_length,
        distance=distance,
        straightness=float(straightness),
        explained_variance_ratio=ratio,
        components=components,
        projections=projections,
    )


def pca_plane(
    module: nn.Module,
    snapshots: Any,
    x: Any,
    y: Any,
    *,
    loss: str = "mse",
    points: int = 21,
    margin: float = 0.25,
    chunk_size: int = 16,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The loss on the plane of the trajectory's top two principal directions, centred on the
    final snapshot (Li et al. 2018, Sec. 6, Fig. 9), with the trajectory projected onto it.

    Each axis spans ``+-(1 + margin) max_k |projection_k|`` (symmetric about the final point, so
    with odd ``points`` the final point is the grid's centre); an axis the trajectory does not
    move along takes the other's extent. Returns ``(a, b, losses, projections)`` as
    :func:`genlab.empirical._slices.plane` and :attr:`TrajectoryStats.projections`, ready to
    plot as ``contour(a, b, losses.T)`` with ``plot(*projections.T)``.
    """
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not margin >= 0:
        raise ValueError(f"margin must be a float >= 0; got {margin!r}")
    stats = trajectory_statistics(snapshots)
    like = trainable_parameters(module)
    size = sum(v.numel() for v in like.values())
    final = _as_matrix(snapshots)[-1]
    if final.shape[0] != size:
        raise ValueError(f"snapshots must have the module's {size} trainable parameters; got {final.shape[0]}")
    extent = np.max(np.abs(stats.projections), axis=0) * (1.0 + float(margin))
    if not np.any(extent > 0):
        raise ValueError("snapshots must not all be equal (the trajectory spans no plane)")
    extent = np.where(extent > 0, extent, np.max(extent))
    a, b, losses = plane(
        module, final, stats.components[0], stats.components[1], x, y,
        loss=loss, span=_check_range((-extent[0], extent[0]), "span"), span_b=(-extent[1], extent[1]),
        points=points, chunk_size=chunk_size,
    )
    return a, b, losses, stats.projections
