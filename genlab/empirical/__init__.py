"""The empirical side: one training engine and the measurements of trained networks, one module
per topic mirroring genlab.theory (kernel_regime, features).

The training settings live in :mod:`genlab.settings`; the training engine and contexts load torch
on first use.
"""

from typing import Any

__all__ = [
    "EmpiricalContext",
    "TrainingRun",
    "linearize",
    "per_sample_loss",
    "resolve_device",
    "train",
]

_LAZY = {
    "EmpiricalContext": "genlab.empirical._context",
    "linearize": "genlab.empirical._context",
    "TrainingRun": "genlab.empirical._train",
    "per_sample_loss": "genlab.empirical._train",
    "resolve_device": "genlab.empirical._train",
    "train": "genlab.empirical._train",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'genlab.empirical' has no attribute {name!r}")
