# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exploring a loss landscape
#
# Train a small erf network on the digits images with full-batch GD, keeping parameter
# snapshots, then look at the landscape around the solution:
#
# 1. the top Hessian eigenvalues (Lanczos on Hessian-vector products) beside the edge-of-stability
#    threshold 2/lr (Cohen et al. 2021);
# 2. the loss along the straight line from the initialisation to the solution (1D interpolation,
#    Goodfellow et al. 2015);
# 3. the loss on a 2D slice along two filter-normalised random directions (Li et al. 2018);
# 4. the trajectory's principal components and the loss on their plane (Li et al. 2018, Sec. 6).
#
# `GENLAB_NOTEBOOK_SMALL=1` (set by the tests) shrinks every size; the code is the same.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np
import torch

from genlab.empirical._curvature import top_eigenvalues
from genlab.settings import TrainSettings
from genlab.empirical._slices import filter_normalized_direction, flat, interpolate, plane, trainable_parameters
from genlab.empirical._train import train
from genlab.empirical._trajectory import pca_plane, snapshot_hook, trajectory_statistics
from genlab.models import ArchSpec
from genlab.tasks import make_task

SMALL = os.environ.get("GENLAB_NOTEBOOK_SMALL") == "1"

# %%
task = make_task("digits", seed=0, n_train=100 if SMALL else 500, n_test=200)
spec = ArchSpec(kind="fc", depth=2, activation="erf", parametrization="standard", w_std=1.0, b_std=0.0, out_dim=10)
net = spec.to_torch(32 if SMALL else 100, input_shape=(64,), seed=0, dtype=torch.float64)
theta_init = flat(trainable_parameters(net)).detach().clone()
lr = 0.2
settings = TrainSettings(optimizer="gd", lr=lr, steps=150 if SMALL else 1000, measure_every=10 if SMALL else 25)
hook, snapshots = snapshot_hook(every=1)
run = train(net, task.x_train, task.y_train, settings, x_test=task.x_test, y_test=task.y_test, hooks=[hook])
theta_end = flat(trainable_parameters(net)).detach().clone()
print(f"train loss {run.train_loss[0]:.3f} -> {run.train_loss[-1]:.4f}; {len(snapshots)} snapshots")

# %% [markdown]
# ## 1. Hessian top eigenvalues

# %%
eig = top_eigenvalues(net, task.x_train, task.y_train, k=3, seed=0)
print("top-3 Hessian eigenvalues:", np.round(eig.values, 3), f"({eig.hvps} Hessian-vector products)")
print(f"edge-of-stability threshold 2/lr = {2 / lr:.2f}")

# %% [markdown]
# ## 2. The straight line from initialisation to solution

# %%
t, losses = interpolate(net, theta_init, theta_end, task.x_train, task.y_train, points=11 if SMALL else 41,
                        t_range=(-0.2, 1.2))
fig, ax = plt.subplots(figsize=(3.3, 2.4), constrained_layout=True)
ax.plot(t, losses, "o-", ms=3)
ax.set_yscale("log")
ax.set_xlabel(r"$t$ in $(1-t)\,\theta_0 + t\,\theta_T$")
ax.set_ylabel("training loss (MSE)")
plt.show()

# %% [markdown]
# ## 3. A 2D slice along filter-normalised directions

# %%
d1 = filter_normalized_direction(net, seed=1)
d2 = filter_normalized_direction(net, seed=2, orthogonal_to=d1)
a, b, surface = plane(net, theta_end, d1, d2, task.x_train, task.y_train, points=7 if SMALL else 25)
fig, ax = plt.subplots(figsize=(3.3, 2.8), constrained_layout=True)
contour = ax.contour(a, b, np.log10(surface.T), levels=12)
ax.clabel(contour, fontsize=6)
ax.plot(0, 0, "k*")
ax.set_xlabel(r"$\alpha$ (direction 1)")
ax.set_ylabel(r"$\beta$ (direction 2)")
ax.set_title(r"$\log_{10}$ training loss", fontsize=9)
plt.show()

# %% [markdown]
# ## 4. Trajectory PCA

# %%
stats = trajectory_statistics(snapshots)
print(f"path length {stats.path_length:.3f}, distance from init {stats.distance:.3f}, "
      f"straightness {stats.straightness:.3f}")
print("explained variance of the top 2 directions:", np.round(stats.explained_variance_ratio[:2], 3))
pa, pb, plane_losses, projections = pca_plane(net, snapshots, task.x_train, task.y_train, points=7 if SMALL else 21)
fig, ax = plt.subplots(figsize=(3.3, 2.8), constrained_layout=True)
contour = ax.contour(pa, pb, np.log10(plane_losses.T), levels=12)
ax.plot(*projections.T, "r.-", ms=3, lw=0.8, label="GD trajectory")
ax.set_xlabel(f"PC 1 ({100 * stats.explained_variance_ratio[0]:.0f}% of variance)")
ax.set_ylabel(f"PC 2 ({100 * stats.explained_variance_ratio[1]:.0f}%)")
ax.legend(frameon=False, fontsize=7)
plt.show()
