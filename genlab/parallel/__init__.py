"""The parallel-training application behind ``genlab train-parallel CONFIG.toml --nproc N``.

A config names one task, one fc/conv architecture and one parallel optimizer of
:mod:`genlab.optim` (EASGD, Leader SGD, local or data-parallel SGD); an optional ``[sweep]``
runs several methods and worker counts on the same task and the same budget of samples
(:mod:`genlab.parallel._config`). Each run is a ``torch.distributed`` group of ``nproc`` worker
processes launched by ``torchrun`` (elastic agent: ``--max-restarts``, the default launcher) or
by ``torch.multiprocessing`` (``launcher="spawn"``, used by the tests); both start the same
worker (:mod:`genlab.parallel._worker`, entry ``python -m genlab.parallel RUN_DIR``).

Per round rank 0 records: the samples used so far, the center's train loss, test loss and test
error (the center is the EASGD center variable, the LSGD global leader, the average for local /
data-parallel SGD), the spread ``mean_i ||x_i - x_ref||`` before the exchange, and on
``measurements`` evenly spaced rounds (always the last) the sharpness of the center.

Elasticity: after every round rank 0 writes the center, the round counter and the rows so far to
``state.pt`` (atomically). When a worker dies, torchrun's agent stops the group and starts it
again (up to ``--max-restarts`` times); every worker of the new group, however many there are,
starts from the saved center at the saved round.

Output (``out``): per run a folder ``<method>-p<nproc>`` (``run.json`` resolved config,
``rounds.csv``, ``result.json``, ``state.pt``, ``starts.jsonl``: where each worker of each
incarnation started, ``pids/``), and for all runs ``config.json`` (resolved), ``summary.csv``,
``table.md`` and ``figure.png`` (center loss, test error, spread and sharpness against samples).
A finished run whose ``run.json`` is identical is reused, not recomputed.

Why a command of its own rather than a ``[parallel]`` table in ``genlab run`` studies: a study
cell is one process in the study's executor pool, while a parallel run is a group of processes
with its own launcher, restarts and rendezvous. The config schema's machinery, the table
renderer and the atomic writes are the study's.
"""

from genlab.parallel._config import (
    METHODS,
    ConfigError,
    ParallelSettings,
    SweepSettings,
    parse_config,
)
from genlab.parallel._launch import launch, prepare_run, torchrun_command
from genlab.parallel._runner import train_parallel

__all__ = [
    "METHODS",
    "ConfigError",
    "ParallelSettings",
    "SweepSettings",
    "launch",
    "parse_config",
    "prepare_run",
    "torchrun_command",
    "train_parallel",
]
