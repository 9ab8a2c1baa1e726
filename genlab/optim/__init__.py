"""Landscape-aware and parallel optimizers with the torch.optim API (usable outside genlab).

Single-process optimizers (each subclasses ``torch.optim.Optimizer``: param groups, state
dicts, LR schedulers work as usual):

- :class:`SAM` (Foret et al. 2021) and ASAM (``adaptive=True``, Kwon et al. 2021), wrapping a
  base optimizer; :func:`frozen_batchnorm_stats` for the perturbed forward pass;
- :class:`EntropySGD` (Chaudhari et al. 2017, Algorithm 1);
- :class:`LARS` (You et al. 2017) and :class:`LAMB` (You et al. 2020), layer-wise trust ratios.

SAM and Entropy-SGD need ``step(closure)``; LARS and LAMB take a plain ``step()``.

Parallel optimizers, one per ``torch.distributed`` worker process (the group is joined before
they are built; without one they run as a single worker): :class:`EASGD` (Zhang et al. 2015),
:class:`LSGD` (Leader SGD, Teng et al. 2019), :class:`LocalSGD` and :class:`DataParallelSGD`.
``genlab train-parallel``, which launches and measures them, is :mod:`genlab.parallel`.
"""

from genlab.optim.easgd import EASGD, easgd_exchange
from genlab.optim.entropy_sgd import EntropySGD
from genlab.optim.layerwise import LAMB, LARS
from genlab.optim.local_sgd import DataParallelSGD, LocalSGD
from genlab.optim.lsgd import LSGD, lsgd_pull
from genlab.optim.sam import SAM, frozen_batchnorm_stats

__all__ = ["EASGD", "LAMB", "LARS", "LSGD", "SAM", "DataParallelSGD", "EntropySGD", "LocalSGD", "easgd_exchange",
           "frozen_batchnorm_stats", "lsgd_pull"]
