"""Shared kernel machinery: analytic (neural-tangents) and empirical (torch) NTKs, kernel
regression and gradient-descent dynamics in function space, spectra, alignment and CKA.

Importing this package imports torch (for the empirical NTK); jax and neural-tangents load on
the first call of :func:`analytic_kernel`.
"""

from genlab.kernels._analytic import analytic_kernel
from genlab.kernels._empirical import empirical_ntk
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
