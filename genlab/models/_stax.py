"""The neural-tangents realisation of an ArchSpec (imported lazily: it loads TensorFlow)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genlab.models._spec import ArchSpec


def import_neural_tangents() -> Any:
    """Import neural_tangents with TensorFlow's start-up logging silenced.

    neural-tangents imports TensorFlow (through tf2jax), whose C++ start-up lines (oneDNN, CUDA
    stubs) are written to file descriptor 2 before absl logging is initialised, so
    ``TF_CPP_MIN_LOG_LEVEL`` alone does not hide them: the descriptor is pointed at /dev/null
    for the duration of the first import. Python exceptions are raised after it is restored.
    """
    if "neural_tangents" in sys.modules:
        return sys.modules["neural_tangents"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import neural_tangents
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return neural_tangents


def build_stax(spec: "ArchSpec", width: int) -> tuple[Any, Any, Any]:
    """``stax.serial`` of ``depth`` x (Dense|Conv, activation), pooling for conv kinds, readout.

    "mup" is built in the "ntk" parametrization: its analytic side is the NNGP at init
    (see :mod:`genlab.models._spec`).
    """
    stax = import_neural_tangents().stax
    param = "ntk" if spec.parametrization == "mup" else spec.parametrization
    activation = {
        "relu": stax.Relu,
        "erf": stax.Erf,  # a * erf(b * x) + c with a = b = 1, c = 0
        "gelu": lambda: stax.Gelu(approximate=False),
        "identity": stax.Identity,
    }[spec.activation]
    layers = []
    for _ in range(spec.depth):
        if spec.kind == "fc":
            layers.append(stax.Dense(width, W_std=spec.w_std, b_std=spec.b_std, parameterization=param))
        else:
            nd = spec.spatial_dims
            layers.append(
                stax.Conv(
                    width,
                    filter_shape=(spec.filter_size,) * nd,
                    strides=(spec.stride,) * nd,
                    padding=spec.padding,
                    W_std=spec.w_std,
                    b_std=spec.b_std,
                    parameterization=param,
                )
            )
        layers.append(activation())
    if spec.kind != "fc":
        layers.append(stax.Flatten() if spec.pooling == "flatten" else stax.GlobalAvgPool())
    layers.append(stax.Dense(spec.out_dim, W_std=spec.w_std, b_std=spec.b_std, parameterization=param))
    return stax.serial(*layers)
