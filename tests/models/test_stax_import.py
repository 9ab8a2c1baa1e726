"""neural-tangents is imported without its TensorFlow-only ``experimental`` package, and an
analytic kernel loads neither TensorFlow nor torch."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import json, sys
import numpy as np
from genlab.models import ArchSpec
from genlab.kernels import analytic_kernel
k = analytic_kernel(ArchSpec(depth=1, activation="erf", w_std=1.5, b_std=0.2), np.eye(3), get="nngp")
print(json.dumps({"tensorflow": sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf2jax")),
                  "torch": "torch" in sys.modules,
                  "k00": float(k[0, 0])}))
"""


def test_an_analytic_kernel_loads_no_tensorflow() -> None:
    """A fresh process computes a kernel with neural-tangents loaded and no tensorflow or tf2jax
    module imported (whether or not they are installed), nor torch (genlab.kernels loads it only
    for the empirical NTK). The kernel value is the erf NNGP at
    ||x||^2 / d = 1/3: for one hidden layer with pre-activation variance q = w^2 / 3 + b^2,
    k = w^2 (2/pi) arcsin(2 q / (1 + 2 q)) + b^2 (Williams 1997)."""
    from genlab.models import ArchSpec

    spec = ArchSpec(depth=1, activation="erf", w_std=1.5, b_std=0.2)
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["tensorflow"] == [] and result["torch"] is False
    q = spec.w_std**2 / 3 + spec.b_std**2
    import math

    expected = spec.w_std**2 * (2 / math.pi) * math.asin(2 * q / (1 + 2 * q)) + spec.b_std**2
    assert abs(result["k00"] - expected) < 1e-6 * expected  # float32 kernels in neural-tangents
