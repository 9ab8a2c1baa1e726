"""The elastic state of a run, ``state.pt``: what a restarted group resumes from.

Rank 0 writes it after every round: the center (the center variable of EASGD, the leader of
LSGD, the averaged parameters of local / data-parallel SGD), the round counter, the samples
spent, the restart count and the rows recorded so far. It is written atomically (a temporary
file in the same folder, fsync, then ``os.replace``) and read back with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_state", "save_state"]


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Write ``state`` (tensors, numbers, strings) to ``path`` atomically: temp file + rename.

    A reader never sees a half-written file: either the previous state or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save({k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_state(path: str | Path) -> dict[str, Any] | None:
    """The state written by :func:`save_state`, or None when there is none yet."""
    path = Path(path)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)
