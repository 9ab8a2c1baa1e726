"""The neural-tangents realisation of an ArchSpec (neural-tangents is imported lazily, without TensorFlow)."""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genlab.models._spec import ArchSpec


def import_neural_tangents() -> Any:
    """Import neural_tangents without its ``experimental`` package.

    neural-tangents 0.6.5's ``__init__`` runs ``from . import experimental``, a TF-to-JAX
    converter that imports TensorFlow (through tf2jax): ~1600 modules, ~440 MB and seconds of
    start-up that genlab never uses. An empty package registered as
    ``neural_tangents.experimental`` before the first import satisfies that line, so neither
    TensorFlow nor tf2jax is needed (they are not installed: see the Makefile). Stax kernels,
    ``predict``, ``batch`` and ``empirical`` do not touch it.
    """
    if "neural_tangents" in sys.modules:
        return sys.modules["neural_tangents"]
    if "neural_tangents.experimental" not in sys.modules:
        placeholder = types.ModuleType("neural_tangents.experimental",
                                       "Placeholder registered by genlab: the TF-to-JAX converter is not imported.")
        placeholder.__path__ = []
        sys.modules["neural_tangents.experimental"] = placeholder
    import neural_tangents

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
