"""The theory side: infinite-width predictions, one module per topic mirroring genlab.empirical
(kernel_regime, features)."""

from genlab.theory._context import TheoryContext

__all__ = ["TheoryContext"]
