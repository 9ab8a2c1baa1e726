"""Grid cells and their content hash.

A cell's id is the first 16 hex digits of the sha256 of :data:`RESULTS_VERSION` and its resolved
config (``task``, ``model``, ``train``, ``quantities``, every default filled in) as canonical
JSON: sorted keys, no spaces, ASCII. The study's name, description and table layout are not part
of it, so renaming a study or changing how its table is shown reuses every cell.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

#: Bumped whenever genlab changes what a cell computes for the same config (a corrected
#: prediction, a new kind or spread), so that cells cached by older code are recomputed instead of
#: served with stale numbers. 2: bounds and spreads, implicit-bias domains, the GELU Lipschitz
#: constant, EoS thresholds with weight decay (issue 12).
RESULTS_VERSION = 2

#: Columns that follow the parameters in results.csv; a parameter with one of these names is
#: shown dotted. ``theory_kind`` is "value", "upper" or "lower" (empty without a prediction);
#: ``gap`` = empirical - theory for values only, ``bound`` "satisfied" / "violated" for bounds only.
RESULT_COLUMNS = ("quantity", "theory", "theory_kind", "empirical", "gap", "bound", "regime")


@dataclass(frozen=True)
class Cell:
    """One grid cell.

    Attributes:
        id: content hash of ``config`` (16 hex digits).
        index: position in grid order (the product of the grid lists, last key fastest).
        params: the swept values of this cell, by dotted key, in grid order (canonical values:
            e.g. an int given for a float field is a float).
        config: the resolved config handed to the cell function:
            ``{"task", "model", "train", "quantities"}``.
    """

    id: str
    index: int
    params: dict[str, Any]
    config: dict[str, Any]


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace; NaN and infinities are an error."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def cell_id(config: dict[str, Any]) -> str:
    """The 16-hex-digit content hash of a resolved cell config under :data:`RESULTS_VERSION`."""
    return hashlib.sha256(f"genlab-results-v{RESULTS_VERSION}:{canonical_json(config)}".encode("ascii")).hexdigest()[:16]


def column_names(dotted_keys: list[str] | tuple[str, ...]) -> dict[str, str]:
    """Column name of each swept key: its field name when that is unique among the swept keys
    (and not a result column), else the dotted key."""
    short = Counter(key.partition(".")[2] for key in dotted_keys)
    names = {}
    for key in dotted_keys:
        field = key.partition(".")[2]
        names[key] = field if short[field] == 1 and field not in RESULT_COLUMNS else key
    return names
