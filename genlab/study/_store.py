"""The run directory: cell files (the cache), results, resolved config and provenance.

Layout of ``runs/<name>/`` (or ``--out DIR``)::

    config.toml        the resolved study (defaults filled in; grid keys dotted)
    cells/<id>.json    one per cell: id, status, config, output (CellOutput.to_dict()), error,
                       wall_s, started, finished; written atomically (temp file + os.replace)
    results.parquet    one row per cell x quantity, rebuilt from the cell files on every run:
                       the swept parameters, then quantity, theory, theory_kind, empirical,
                       gap, bound, regime (see results_frame)
    results.csv        the same rows
    table.md           the side-by-side table
    provenance.json    package versions, git commit, python, platform, seeds, wall times

A cell file is reused when it parses, its status is "ok" or "diverged" and its config equals
the cell's; anything else (missing, corrupt, failed) is recomputed.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genlab.study._executor import CellResult
from genlab.study._grid import RESULT_COLUMNS, Cell, canonical_json, column_names
from genlab.study._output import CellOutput
from genlab.study._regime import regime_verdict

if TYPE_CHECKING:
    import pandas as pd

    from genlab.study._study import Study

CELLS_DIR = "cells"
CONFIG_FILE = "config.toml"
PACKAGES = ("genlab", "torch", "jax", "jaxlib", "neural-tangents", "numpy")
FINISHED = ("ok", "diverged")


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and os.replace,
    so that a reader (or a crash) never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cell_path(run_dir: Path, ident: str) -> Path:
    return run_dir / CELLS_DIR / f"{ident}.json"


def arrays_path(run_dir: Path, ident: str) -> Path:
    return run_dir / CELLS_DIR / f"{ident}.npz"


def read_arrays(run_dir: Path, ident: str) -> dict[str, Any]:
    """The arrays (name -> numpy array) a finished cell stored; empty when it stored none."""
    import numpy as np

    path = arrays_path(run_dir, ident)
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def stored_array_names(run_dir: Path, ident: str) -> list[str]:
    """The names of the arrays a finished cell stored, without loading them."""
    import numpy as np

    path = arrays_path(run_dir, ident)
    if not path.exists():
        return []
    with np.load(path, allow_pickle=False) as data:
        return list(data.files)


def read_record(path: Path) -> dict[str, Any] | None:
    """The cell record at ``path`` if it parses as one, else None."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("status"), str):
        return None
    if record["status"] in FINISHED:
        try:
            CellOutput.from_dict(record["output"])
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
    return record


def read_finished(run_dir: Path, cell: Cell) -> dict[str, Any] | None:
    """The cached record of ``cell`` if it is finished and its config matches, else None."""
    record = read_record(cell_path(run_dir, cell.id))
    if record is None or record["status"] not in FINISHED:
        return None
    try:
        same = canonical_json(record.get("config")) == canonical_json(cell.config)
    except (TypeError, ValueError):
        same = False
    return record if same else None


def write_cell(run_dir: Path, cell: Cell, result: CellResult) -> dict[str, Any]:
    """Write the record of a finished (or failed) cell; return it.

    Arrays a cell returns (``output["arrays"]``: name -> numpy array, e.g. a parameter
    trajectory) go to ``cells/<id>.npz``, written before the JSON record, so that a record that
    names arrays always has them; the record keeps their names."""
    from genlab import __version__

    output = result.output
    if output is not None and output.get("arrays"):
        import io

        import numpy as np

        output = dict(output)
        arrays = output.pop("arrays")
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write(arrays_path(run_dir, cell.id), buffer.getvalue())
        output["arrays"] = sorted(arrays)
    record = {
        "id": cell.id,
        "status": result.status,
        "config": cell.config,
        "output": output,
        "error": result.error,
        "wall_s": result.wall_s,
        "started": result.started,
        "finished": result.finished,
        "genlab_version": __version__,
    }
    atomic_write(cell_path(run_dir, cell.id), json.dumps(record, indent=1, sort_keys=True) + "\n")
    return record


def write_config(run_dir: Path, study: "Study") -> None:
    """``config.toml``: the resolved study, loadable again with :func:`genlab.study.load`."""
    import tomli_w

    def clean(section: dict[str, Any]) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in section.items() if v is not None}

    task = clean(study.base["task"])
    doc: dict[str, Any] = {
        "name": study.name,
        "description": study.description,
        "quantities": list(study.quantities),
        "task": {"name": task.pop("name"), **task},
        "model": clean(study.base["model"]),
        "train": clean(study.base["train"]),
        "grid": {key: list(values) for key, values in study.grid.items()},
        "table": {
            "rows": list(study.table_rows),
            "quantities": list(study.table_quantities),
            "aggregate": study.aggregate or "none",
        },
        "regime": dict(study.regime),
        "resources": {k: v for k, v in study.resources.items() if v is not None},
    }
    header = f"# Resolved from {study.source} by genlab; `genlab table` re-renders from this directory.\n"
    atomic_write(run_dir / CONFIG_FILE, header + tomli_w.dumps(doc))


def results_frame(study: "Study", records: dict[str, dict[str, Any]]) -> "pd.DataFrame":
    """One row per cell x quantity, in grid order: the swept parameters (short column names
    when unique), then quantity, theory, theory_kind ("value", "upper" or "lower": what the
    theory number is; empty without a prediction), empirical, gap (empirical - theory, for
    values only), bound ("satisfied" or "violated", for bounds only), regime. A bound is never
    turned into a gap."""
    import pandas as pd

    names = column_names(list(study.grid))
    rows = []
    for cell in study.cells:
        record = records.get(cell.id)
        if record is None:
            continue
        params = {names[key]: value for key, value in cell.params.items()}
        if record["status"] not in FINISHED:
            rows += [{**params, "quantity": q, "theory": None, "theory_kind": None, "empirical": None, "gap": None,
                      "bound": None, "regime": "error"} for q in study.quantities]
            continue
        output = CellOutput.from_dict(record["output"])
        verdict = regime_verdict(output, **study.regime)
        for row in output.rows:
            value = row.theory is not None and row.empirical is not None and row.theory_kind == "value"
            gap = float(row.empirical) - float(row.theory) if value else None
            rows.append({**params, "quantity": row.quantity, "theory": row.theory,
                         "theory_kind": row.theory_kind if row.theory is not None else None, "empirical": row.empirical,
                         "gap": gap, "bound": row.bound, "regime": verdict})
    frame = pd.DataFrame(rows, columns=[*names.values(), *RESULT_COLUMNS])
    for column in ("theory", "empirical", "gap"):
        frame[column] = frame[column].astype("float64")
    for column in ("theory_kind", "bound"):  # text with <NA> where empty, also when every row is empty
        frame[column] = frame[column].astype("string")
    return frame


def write_results(run_dir: Path, frame: "pd.DataFrame") -> None:
    """results.parquet and results.csv, each replaced atomically."""
    import io

    import pyarrow as pa

    atomic_write(run_dir / "results.csv", frame.to_csv(index=False, lineterminator="\n"))
    buffer = io.BytesIO()
    try:
        frame.to_parquet(buffer, index=False)
    except (pa.ArrowException, ValueError):  # a parameter column of mixed types
        mixed = frame.copy()
        for column in mixed.columns[mixed.dtypes == object]:
            mixed[column] = mixed[column].map(lambda v: None if v is None else str(v))
        buffer = io.BytesIO()
        mixed.to_parquet(buffer, index=False)
    atomic_write(run_dir / "results.parquet", buffer.getvalue())


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state() -> dict[str, Any] | None:
    """Commit (and whether the tree is dirty) of the git checkout holding the genlab sources."""
    import genlab

    where = Path(genlab.__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain"], cwd=where, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def write_provenance(run_dir: Path, study: "Study", records: dict[str, dict[str, Any]], *, cached: set[str],
                     executor: str, workers: int, started: str, finished: str, wall_s: float) -> dict[str, Any]:
    """provenance.json: what produced the results, and how long each cell took."""
    names = column_names(list(study.grid))
    cells = {}
    for cell in study.cells:
        record = records.get(cell.id, {})
        cells[cell.id] = {
            "params": {names[k]: v for k, v in cell.params.items()},
            "status": record.get("status", "missing"),
            "cached": cell.id in cached,
            "wall_s": record.get("wall_s"),
            "finished": record.get("finished"),
        }
    provenance = {
        "study": study.name,
        "source": study.source,
        "packages": _versions(),
        "git": git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "executor": executor,
        "workers": workers,
        "seeds": {
            "train.seed": sorted({c.config["train"]["seed"] for c in study.cells}),
            "task.seed": sorted({c.config["task"]["seed"] for c in study.cells}),
        },
        "n_cells": len(study.cells),
        "n_cached": sum(c.id in cached for c in study.cells),
        "n_failed": sum(records.get(c.id, {}).get("status") not in FINISHED for c in study.cells),
        "started": started,
        "finished": finished,
        "wall_s": wall_s,
        "cells": cells,
    }
    atomic_write(run_dir / "provenance.json", json.dumps(provenance, indent=1, default=str) + "\n")
    return provenance
