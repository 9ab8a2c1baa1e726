"""Studies: a TOML config expanded into a grid of cells, each pairing theory with a trained net.

``load(path)`` validates a study config into a :class:`Study`; ``Study.run()`` computes the cells
that are not cached in the run directory (content hash of each cell's resolved config) and
returns :class:`Results`; ``open_run(run_dir)`` reads a run directory back without computing.
Importing this package does not import torch, jax, numpy or pandas.
"""

from genlab.study._executor import EXECUTORS, CellResult, LocalExecutor, RayExecutor
from genlab.study._grid import Cell, canonical_json, cell_id
from genlab.study._output import CellOutput, QuantityRow
from genlab.study._regime import VERDICTS, regime_verdict
from genlab.study._schema import MAX_CELLS, StudyConfigError, load, parse
from genlab.study._study import Results, RunDirError, RunInterrupted, Study, open_run

__all__ = [
    "EXECUTORS",
    "MAX_CELLS",
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
    "canonical_json",
    "cell_id",
    "load",
    "open_run",
    "parse",
    "regime_verdict",
]
