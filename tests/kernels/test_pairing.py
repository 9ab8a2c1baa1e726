"""The pairing itself: the empirical NTK of ``spec.to_torch(width)`` converges to
``analytic_kernel(spec)`` of the same spec, with relative Frobenius error ~ width^(-1/2).

Theory: at initialisation the NTK of a finite net fluctuates around its limit with relative
standard deviation O(depth / sqrt(width)) (Jacot et al. 2018; Hanin & Nica 2019), so the log-log
slope of the error against the width is -1/2. Measured here before fixing the tolerances
(fc relu, depth 2, 12 seeds): sqrt(width) * error stays between 2.4 and 3.4 from width 64 to 4096.

Tolerances: each error is the median over SEEDS networks (the error's distribution has a heavy
right tail at small width). Over a 16x range of widths SEEDS = 6 medians leave about +-0.2 of
noise on the fitted slope, hence SLOPE_RANGE; MAX_ERROR at the largest width is ~2x the
measured value (0.04-0.06 for fc at 4096, 0.02-0.04 for conv1d at 2048).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.kernels import analytic_kernel, empirical_ntk
from genlab.models import ArchSpec
from tests.conftest import rel_frobenius

SEEDS = 6
N_INPUTS = 10
SLOPE_RANGE = (-0.8, -0.3)
FC_WIDTHS = (256, 1024, 4096)
CONV_WIDTHS = (128, 512, 2048)  # channels; a 4096-channel conv layer alone holds 50M weights
MAX_ERROR = {"fc": 0.12, "conv1d": 0.08}

CASES = [
    (ArchSpec(kind="fc", depth=2, activation="relu", w_std=1.4, b_std=0.1), (8,)),
    (ArchSpec(kind="fc", depth=2, activation="erf", w_std=1.3, b_std=0.1), (8,)),
    (ArchSpec(kind="fc", depth=2, activation="relu", parametrization="standard", w_std=1.4, b_std=0.1), (8,)),
    (ArchSpec(kind="fc", depth=2, activation="erf", parametrization="standard", w_std=1.3, b_std=0.1), (8,)),
    (ArchSpec(kind="conv1d", depth=2, activation="relu", w_std=1.4, b_std=0.1), (8, 2)),
]


@pytest.mark.parametrize(("spec", "shape"), CASES, ids=lambda c: f"{c.kind}-{c.activation}-{c.parametrization}" if isinstance(c, ArchSpec) else "")
def test_empirical_ntk_converges_to_analytic_ntk(spec: ArchSpec, shape: tuple) -> None:
    x = np.random.default_rng(0).normal(size=(N_INPUTS, *shape))
    widths = FC_WIDTHS if spec.kind == "fc" else CONV_WIDTHS
    errors = []
    for width in widths:
        # The standard parametrization's NTK grows with the width: both sides use the same one.
        reference = analytic_kernel(spec, x, width=width)
        per_seed = [
            rel_frobenius(empirical_ntk(spec.to_torch(width, input_shape=shape, seed=seed, dtype=torch.float64), x), reference)
            for seed in range(SEEDS)
        ]
        errors.append(float(np.median(per_seed)))
    slope = np.polyfit(np.log(widths), np.log(errors), 1)[0]
    summary = f"widths {widths}: median errors {np.round(errors, 4).tolist()}, slope {slope:.3f}"
    assert errors[0] > errors[1] > errors[2], summary
    assert SLOPE_RANGE[0] < slope < SLOPE_RANGE[1], summary
    assert errors[-1] < MAX_ERROR[spec.kind], summary
