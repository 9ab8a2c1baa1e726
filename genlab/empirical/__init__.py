"""The empirical side: one training engine and the measurements of trained networks, one module
per topic mirroring genlab.theory (kernel_regime, features)."""

from genlab.empirical._context import EmpiricalContext, linearize
from genlab.empirical._settings import TrainSettings, SettingsError
from genlab.empirical._train import TrainingRun, per_sample_loss, resolve_device, train

__all__ = [
    "EmpiricalContext",
    "SettingsError",
    "TrainSettings",
    "TrainingRun",
    "linearize",
    "per_sample_loss",
    "resolve_device",
    "train",
]
