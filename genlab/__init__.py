"""genlab: a theory-experiment workbench for generalization studies in deep learning.

Importing the package is cheap: torch, jax and neural-tangents are imported by
the submodules that need them (``genlab.models``, ``genlab.kernels``), never here.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
