"""Shared kernel machinery: analytic (neural-tangents) and empirical (torch) NTKs, kernel
regression and gradient-descent dynamics in function space, spectra, alignment and CKA.

Importing this package imports neither torch nor jax: torch loads on first use of
:func:`empirical_ntk`, jax and neural-tangents on the first call of :func:`analytic_kernel`, so
a process that only needs analytic kernels never pays torch's import.
"""

from genlab.kernels._analytic import analytic_kernel
from genlab.kernels._regression import (
    FunctionSpaceTrajectory,
    IllConditionedKernelWarning,
    gd_dynamics,
    gradient_flow,
    kernel_regression,
    squared_error_moments,
)
from genlab.kernels._spectra import (
    center_kernel,
    cka,
    kernel_eigendecomposition,
    kernel_spectrum,
    kernel_target_alignment,
    linear_cka,
    target_eigencoefficients,
)

__all__ = [
    "FunctionSpaceTrajectory",
    "IllConditionedKernelWarning",
    "analytic_kernel",
    "center_kernel",
    "cka",
    "empirical_ntk",
    "gd_dynamics",
    "gradient_flow",
    "kernel_eigendecomposition",
    "kernel_regression",
    "kernel_spectrum",
    "kernel_target_alignment",
    "linear_cka",
    "squared_error_moments",
    "target_eigencoefficients",
]


def __getattr__(name: str):
    if name == "empirical_ntk":  # the torch side, loaded on first use
        from genlab.kernels._empirical import empirical_ntk

        return empirical_ntk
    raise AttributeError(f"module 'genlab.kernels' has no attribute {name!r}")
