"""Landscape-aware and parallel optimizers with the torch.optim API (usable outside genlab).

Single-process optimizers (each subclasses ``torch.optim.Optimizer``: param groups, state
dicts, LR schedulers work as usual):

- :class:`SAM` (Foret et al. 2021) and ASAM (``adaptive=True``, Kwon et al. 2021), wrapping a
  base optimizer; :func:`frozen_batchnorm_stats` for the perturbed forward pass;
- :class:`EntropySGD` (Chaudhari et al. 2017, Algorithm 1);
- :class:`LARS` (You et al. 2017) and :class:`LAMB` (You et al. 2020), layer-wise trust ratios.

SAM and Entropy-SGD need ``step(closure)``; LARS and LAMB take a plain ``step()``.
"""

from genlab.optim.entropy_sgd import EntropySGD
from genlab.optim.layerwise import LAMB, LARS
from genlab.optim.sam import SAM, frozen_batchnorm_stats

__all__ = ["LAMB", "LARS", "SAM", "EntropySGD", "frozen_batchnorm_stats"]

# --- end of the single-process optimizers; distributed optimizers' exports go below ---

# --- parallel optimizers on torch.distributed (EASGD, Leader SGD, local / data-parallel SGD);
# runner: genlab.optim.parallel (`genlab train-parallel`) ---
from genlab.optim.easgd import EASGD, easgd_exchange  # noqa: E402
from genlab.optim.local_sgd import DataParallelSGD, LocalSGD  # noqa: E402
from genlab.optim.lsgd import LSGD, lsgd_pull  # noqa: E402

__all__ += ["EASGD", "LSGD", "DataParallelSGD", "LocalSGD", "easgd_exchange", "lsgd_pull"]
