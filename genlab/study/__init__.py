"""Studies: a TOML config expanded into a grid of cells, each pairing theory with a trained net.

``load(path)`` validates a study config into a :class:`Study`; ``Study.run()`` computes the cells
that are not cached in the run directory (content hash of each cell's resolved config) and
returns :class:`Results`; ``open_run(run_dir)`` reads a run directory back without computing.
``QUANTITIES`` is the registry pairing each quantity's theory and measurement; ``read_toml``,
``StudyFile`` and the run-directory helpers (``cell_path``, ``read_finished``, ``atomic_write``,
``git_state``, ``PACKAGES``) serve the paper builder and the generated docs.
Importing this package does not import torch, jax, numpy or pandas.
"""

from genlab.study._executor import EXECUTORS, CellResult, LocalExecutor, RayExecutor
from genlab.study._grid import Cell, canonical_json, cell_id
from genlab.study._output import CellOutput, QuantityRow
from genlab.study._regime import VERDICTS, regime_verdict
from genlab.study._registry import QUANTITIES
from genlab.study._schema import MAX_CELLS, StudyConfigError, StudyFile, load, parse, read_toml
from genlab.study._store import PACKAGES, atomic_write, cell_path, git_state, read_finished
from genlab.study._study import Results, RunDirError, RunInterrupted, Study, open_run

__all__ = [
    "EXECUTORS",
    "MAX_CELLS",
    "PACKAGES",
    "QUANTITIES",
    "VERDICTS",
    "Cell",
    "CellOutput",
    "CellResult",
    "LocalExecutor",
    "QuantityRow",
    "RayExecutor",
    "Results",
    "RunDirError",
    "RunInterrupted",
    "Study",
    "StudyConfigError",
    "StudyFile",
    "atomic_write",
    "canonical_json",
    "cell_id",
    "cell_path",
    "git_state",
    "load",
    "open_run",
    "parse",
    "read_finished",
    "read_toml",
    "regime_verdict",
]
