"""Landscape views across the cells of a study: several optimizers' trajectories on one plane,
the loss barriers between their solutions, and each cell's 2D loss slice.

They read the arrays cells store (genlab.empirical.landscape: ``trajectory_pca_variance`` keeps
the parameter trajectory, ``loss_plane`` its slice) and rebuild a cell's network and task with
:func:`genlab.study._cell.build_cell` to evaluate the training loss at new points. Cells compared
on one plane or by barriers must share the architecture and the task (e.g. one init trained by
GD, SGD, Adam and SAM): a mismatch is an error naming the cells.

- :func:`trajectory_plane`: the top-2 principal directions of all the cells' snapshots stacked
  (Li et al. 2018, Sec. 6, for one trajectory; here one plane for several, so their paths are
  comparable), the loss on that plane, and each trajectory projected onto it.
- :func:`solution_barriers`: for every pair of final parameter vectors, the loss along the
  segment between them and its barrier above the chord (linear mode connectivity: Draxler et
  al. 2018; Frankle et al. 2020).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from genlab.study._store import read_arrays, stored_array_names

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from genlab.study._study import Results

#: Grid points per axis of the trajectory plane, and of the lines between solutions.
PLANE_POINTS, LINE_POINTS = 25, 21
#: The plane extends this fraction beyond the farthest projected snapshot.
MARGIN = 0.2


@dataclass(frozen=True)
class TrajectoryPlane:
    """Loss on the plane of the top-2 principal directions of several trajectories.

    Attributes:
        a, b: grid coordinates along the two directions (centred on the mean snapshot).
        losses: (len(a), len(b)) training loss, ``losses[i, j] = L(mean + a[i] u1 + b[j] u2)``.
        paths: cell id -> (K, 2) projected snapshots, from init to the end.
        explained: share of the stacked snapshots' variance along u1 and u2.
        labels: cell id -> its swept parameters as text.
    """

    a: np.ndarray
    b: np.ndarray
    losses: np.ndarray
    paths: dict[str, np.ndarray]
    explained: np.ndarray
    labels: dict[str, str]


def _label(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "cell"


def _trajectories(results: "Results") -> tuple[dict[str, np.ndarray], dict[str, Any], dict[str, str]]:
    """Stored trajectories of the finished cells, their configs and labels; checks that they
    live in one parameter space."""
    names = results.study.columns
    paths, configs, labels = {}, {}, {}
    for cell in results.study.cells:
        arrays = read_arrays(results.run_dir, cell.id)
        if "trajectory" in arrays and np.all(np.isfinite(arrays["trajectory"])):
            paths[cell.id] = arrays["trajectory"]
            configs[cell.id] = cell.config
            labels[cell.id] = _label({names[k]: v for k, v in cell.params.items()})
    if len(paths) < 1:
        raise ValueError("no cell of this run stored a trajectory: request the quantity 'trajectory_pca_variance'")
    first = next(iter(configs))
    for ident, config in configs.items():
        if config["model"] != configs[first]["model"] or config["task"] != configs[first]["task"]:
            raise ValueError(f"cells {first[:8]} and {ident[:8]} differ in model or task; a shared plane needs one parameter space and one loss")
    return paths, configs, labels


def _network(config: dict[str, Any]) -> tuple[Any, Any, Any]:
    from genlab.study._cell import build_cell

    task, _, _, _, settings, module = build_cell(config)
    return module, task, settings


def trajectory_plane(results: "Results", *, points: int = PLANE_POINTS) -> TrajectoryPlane:
    """The cells' trajectories on the plane of their stacked top-2 principal directions."""
    from genlab.empirical._slices import plane

    paths, configs, labels = _trajectories(results)
    stacked = np.concatenate(list(paths.values()))
    mean = stacked.mean(axis=0)
    _, singular, vt = np.linalg.svd(stacked - mean, full_matrices=False)
    explained = singular[:2] ** 2 / np.sum(singular**2)
    components = vt[:2]
    projected = {ident: (path - mean) @ components.T for ident, path in paths.items()}
    extent = (1 + MARGIN) * np.max(np.abs(np.concatenate(list(projected.values()))), axis=0)
    extent = np.where(extent > 0, extent, max(float(extent.max()), 1e-12))
    module, task, settings = _network(next(iter(configs.values())))
    a, b, losses = plane(module, mean, components[0], components[1], task.x_train,
                         task.y_train, loss=settings.loss, span=(-extent[0], extent[0]), span_b=(-extent[1], extent[1]),
                         points=points)
    return TrajectoryPlane(a, b, losses, projected, explained, labels)


def solution_barriers(results: "Results", *, points: int = LINE_POINTS) -> tuple["pd.DataFrame", dict[tuple[str, str], np.ndarray]]:
    """Barrier between every pair of final parameter vectors: a frame (cell_a, cell_b, label_a,
    label_b, distance, barrier) and the loss along each segment (pair -> (points,) losses, at
    ``t = linspace(0, 1, points)``)."""
    import pandas as pd

    from genlab.empirical._slices import barrier, interpolate

    paths, configs, labels = _trajectories(results)
    if len(paths) < 2:
        raise ValueError("solution barriers need >= 2 cells with a stored trajectory")
    module, task, settings = _network(next(iter(configs.values())))
    rows, lines = [], {}
    for first, second in itertools.combinations(paths, 2):
        end_a, end_b = paths[first][-1], paths[second][-1]
        t, losses = interpolate(module, end_a, end_b, task.x_train, task.y_train,
                                loss=settings.loss, points=points)
        lines[(first, second)] = losses
        rows.append({"cell_a": first, "cell_b": second, "label_a": labels[first], "label_b": labels[second],
                     "distance": float(np.linalg.norm(end_a - end_b)), "barrier": barrier(t, losses)})
    return pd.DataFrame(rows), lines


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_trajectory_plane(results: "Results", *, view: TrajectoryPlane | None = None) -> "Figure":
    """Loss contours on the shared PCA plane (log-spaced levels), each optimizer's path as a
    line with markers at the measured steps, its start as a square and its end as a star."""
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    view = trajectory_plane(results) if view is None else view
    fig, ax = plt.subplots(figsize=(4.6, 3.8), constrained_layout=True)
    low = max(float(view.losses.min()), 1e-12)
    levels = np.geomspace(low, float(view.losses.max()), 18)
    contour = ax.contourf(view.a, view.b, view.losses.T, levels=levels, norm=LogNorm(), cmap="Greys")
    fig.colorbar(contour, ax=ax, label="training loss", format="%.2g")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (ident, path) in enumerate(view.paths.items()):
        colour = colours[i % len(colours)]
        ax.plot(path[:, 0], path[:, 1], "-o", ms=2.5, lw=1.2, color=colour, label=view.labels[ident])
        ax.plot(*path[0], "s", ms=5, color=colour)
        ax.plot(*path[-1], "*", ms=9, color=colour, mec="black", mew=0.5)
    ax.set_xlabel(f"PC 1 ({100 * view.explained[0]:.1f}% of variance)")
    ax.set_ylabel(f"PC 2 ({100 * view.explained[1]:.1f}% of variance)")
    ax.set_title(f"{results.study.name}: trajectories on their shared PCA plane (■ start, ★ end)", fontsize=8)
    ax.legend(fontsize=6, frameon=True, loc="best")
    return fig


def plot_solution_barriers(results: "Results") -> "Figure":
    """Training loss along the segment between each pair of solutions (log scale)."""
    plt = _pyplot()
    frame, lines = solution_barriers(results)
    fig, ax = plt.subplots(figsize=(4.6, 3.2 + 0.16 * len(frame)), constrained_layout=True)
    t = np.linspace(0.0, 1.0, LINE_POINTS)
    colours = plt.get_cmap("tab10" if len(frame) <= 10 else "tab20").colors
    for i, row in enumerate(frame.itertuples()):
        ax.plot(t, lines[(row.cell_a, row.cell_b)], "-o", ms=2.5, lw=1.0, color=colours[i % len(colours)],
                label=f"{row.label_a} → {row.label_b} (barrier {row.barrier:.2g})")
    ax.set_yscale("log")
    ax.set_xlabel("t  (θ = (1 − t) θ_a + t θ_b)")
    ax.set_ylabel("training loss")
    ax.set_title(f"{results.study.name}: linear paths between solutions", fontsize=8)
    fig.legend(fontsize=6, frameon=False, loc="outside lower center", ncols=1)
    return fig


def plot_loss_planes(results: "Results") -> "Figure":
    """Each cell's 2D slice through its solution along two filter-normalised random directions
    (Li et al. 2018), on one colour scale (log)."""
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    names = results.study.columns
    slices = []
    for cell in results.study.cells:
        arrays = read_arrays(results.run_dir, cell.id)
        if "loss_plane" in arrays:
            slices.append((_label({names[k]: v for k, v in cell.params.items()}), arrays))
    if not slices:
        raise ValueError("no cell of this run stored a loss plane: request the quantity 'loss_plane'")
    columns = min(3, len(slices))
    rows = -(-len(slices) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(2.4 * columns + 0.8, 2.2 * rows), squeeze=False, constrained_layout=True)
    low = max(min(float(s["loss_plane"].min()) for _, s in slices), 1e-12)
    high = max(float(s["loss_plane"].max()) for _, s in slices)
    levels = np.geomspace(low, high, 18)
    contour = None
    for ax, (label, s) in zip(axes.flat, slices):
        contour = ax.contourf(s["loss_plane_a"], s["loss_plane_b"], s["loss_plane"].T, levels=levels, norm=LogNorm(), cmap="viridis")
        ax.plot(0, 0, "*", color="white", ms=7, mec="black", mew=0.5)
        ax.set_title(label, fontsize=7)
        ax.set_xlabel("direction 1 (filter-normalised)", fontsize=6)
        ax.set_ylabel("direction 2", fontsize=6)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(slices):]:
        ax.set_axis_off()
    fig.colorbar(contour, ax=axes, label="training loss", format="%.2g")
    return fig


def available_views(results: "Results") -> list[str]:
    """The cross-cell views this run's stored arrays allow, by figure name."""
    stored = [set(stored_array_names(results.run_dir, cell.id)) for cell in results.study.cells]
    trajectories = sum("trajectory" in names for names in stored)
    views = ["trajectory_plane"] if trajectories else []
    views += ["solution_barriers"] if trajectories >= 2 else []
    views += ["loss_planes"] if any("loss_plane" in names for names in stored) else []
    return views


VIEWS = {
    "trajectory_plane": plot_trajectory_plane,
    "solution_barriers": plot_solution_barriers,
    "loss_planes": plot_loss_planes,
}
