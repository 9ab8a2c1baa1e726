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
# # A tour of genlab
#
# One architecture description (`ArchSpec`) realised twice: as a finite torch network and as its
# infinite-width neural tangent kernel (neural-tangents). We compare the two kernels, then run a
# small study that trains the network and sets each measurement beside the kernel's prediction.
#
# `GENLAB_NOTEBOOK_SMALL=1` (set by the tests) shrinks every size; the code is the same.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

SMALL = os.environ.get("GENLAB_NOTEBOOK_SMALL") == "1"
ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "studies").is_dir())

# %% [markdown]
# ## 1. One spec, two realisations
#
# NTK parametrization, two hidden ReLU layers. `analytic_kernel` is the infinite-width NTK;
# `empirical_ntk` the kernel of a torch network of finite width built from the same spec.

# %%
from genlab.kernels import analytic_kernel, empirical_ntk
from genlab.models import ArchSpec

spec = ArchSpec(kind="fc", depth=2, activation="relu", parametrization="ntk", w_std=1.4, b_std=0.1)
n, d = (24, 8) if SMALL else (100, 16)
x = np.random.default_rng(0).normal(size=(n, d))
ntk = analytic_kernel(spec, x)

widths = [64, 256, 1024] if SMALL else [64, 256, 1024, 4096]
seeds = [0, 1] if SMALL else [0, 1, 2]
errors = []
for width in widths:
    per_seed = []
    for seed in seeds:
        net = spec.to_torch(width, input_shape=(d,), seed=seed, dtype=torch.float64)
        per_seed.append(np.linalg.norm(empirical_ntk(net, x) - ntk) / np.linalg.norm(ntk))
    errors.append(per_seed)
errors = np.array(errors)
slope = np.polyfit(np.log(widths), np.log(errors.mean(axis=1)), 1)[0]
print(f"log-log slope of the relative kernel error against width: {slope:.2f} (theory: -0.5)")

# %%
fig, ax = plt.subplots(figsize=(3.3, 2.5), constrained_layout=True)
ax.errorbar(widths, errors.mean(axis=1), yerr=errors.std(axis=1, ddof=1), fmt="o", capsize=2, label="measured")
reference = errors.mean(axis=1)[0] * (np.array(widths) / widths[0]) ** -0.5
ax.plot(widths, reference, "k--", label=r"$\propto$ width$^{-1/2}$")
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("width (hidden units)")
ax.set_ylabel(r"$\|\hat\Theta - \Theta\|_F / \|\Theta\|_F$")
ax.legend(frameon=False)
plt.show()

# %% [markdown]
# ## 2. A small study
#
# The quickstart study, shrunk: one network trained at a small and a large output scale alpha.
# Each row of the table pairs the NTK's prediction with what the trained network did, with a
# verdict on the regime. The `Results` object displays as an HTML table.

# %%
import genlab.study

config = genlab.study.read_toml(ROOT / "studies" / "quickstart.toml")
config["quantities"] = ["test_mse", "ntk_drift", "weight_change", "train_loss_curve"]
config["grid"] = {"alpha": [0.1, 30.0]}
if SMALL:
    config["task"].update(n_train=32, n_test=64)
    config["model"]["width"] = 64
    config["train"]["steps"] = 100
study = genlab.study.parse(config, source="quickstart (notebook)")
run_dir = Path(tempfile.mkdtemp(prefix="genlab-tour-"))
results = study.run(out=run_dir, workers=1)
results

# %%
from genlab.study.plots import plot_curves

figure = plot_curves(results, "train_loss_curve")
plt.show()

# %%
results.rows.head()
