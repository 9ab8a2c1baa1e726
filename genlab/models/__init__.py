"""Architectures: one :class:`ArchSpec`, two realisations (neural-tangents and torch).

``ArchSpec.to_stax(width)`` gives the infinite-width kernel, ``ArchSpec.to_torch(width, ...)``
the finite network with the same parametrization and initialisation.
"""

from genlab.models._spec import (
    ACTIVATIONS,
    KINDS,
    PADDINGS,
    PARAMETRIZATIONS,
    POOLINGS,
    ArchSpec,
    SpecError,
)

__all__ = [
    "ACTIVATIONS",
    "KINDS",
    "PADDINGS",
    "PARAMETRIZATIONS",
    "POOLINGS",
    "ArchSpec",
    "DiagonalLinear",
    "OutputScaled",
    "ScaledConv",
    "ScaledLinear",
    "SpecError",
    "SpecNetwork",
]


def __getattr__(name: str):
    # The torch-side classes are loaded on first use, so that `import genlab.models` (and the
    # CLI that imports it for validation) does not import torch.
    if name in ("ScaledConv", "ScaledLinear", "SpecNetwork"):
        from genlab.models import _torch

        return getattr(_torch, name)
    if name == "DiagonalLinear":
        from genlab.models._diagonal import DiagonalLinear

        return DiagonalLinear
    if name == "OutputScaled":
        from genlab.models._scaled import OutputScaled

        return OutputScaled
    raise AttributeError(f"module 'genlab.models' has no attribute {name!r}")
