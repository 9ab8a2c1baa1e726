"""Study (a validated config and its cells), running it, and Results (a run directory read back)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genlab.study._executor import CellFn, CellResult, make_executor
from genlab.study._grid import Cell, column_names
from genlab.study._output import CellOutput
from genlab.study._store import (
    CELLS_DIR,
    CONFIG_FILE,
    FINISHED,
    atomic_write,
    cell_path,
    read_finished,
    read_record,
    results_frame,
    write_cell,
    write_config,
    write_provenance,
    write_results,
)
from genlab.study import _table

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table


class RunDirError(ValueError):
    """A path given as a run directory is not one (no config.toml and cells/)."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C (SIGINT). The cells finished before it are written and will be
    reused by the next run of the same study.

    Attributes:
        run_dir: the run directory.
        total: cells in the study; finished: cells with a finished record now (cached or
        computed in this run); computed: those computed in this run.
    """

    def __init__(self, run_dir: Path, total: int, finished: int, computed: int) -> None:
        self.run_dir, self.total, self.finished, self.computed = run_dir, total, finished, computed
        super().__init__(f"interrupted: {finished} of {total} cells finished ({computed} in this run) in {run_dir}")


def _default_cell_fn() -> CellFn:
    try:
        from genlab.study._cell import run_cell
    except ImportError as exc:
        if exc.name != "genlab.study._cell":
            raise
        raise RuntimeError("genlab.study._cell.run_cell is not available in this installation; pass cell_fn") from None
    return run_cell


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, eq=False)
class Study:
    """A validated study: build one with :func:`genlab.study.load`, run it with :meth:`run`.

    Attributes:
        source: the config file.
        name, description: as written; the description states the hypothesis.
        quantities: the quantity names every cell computes, in order.
        task_name: the task.
        base: the ``task``, ``model``, ``train`` sections as written, declared defaults filled in,
            swept keys left out.
        grid: swept values by dotted key (``"model.width"``), in the order written.
        table_rows: dotted keys shown as row labels; table_quantities: the quantities shown;
        aggregate: the dotted key averaged over in the table, or None.
        regime: verdict thresholds (``drift_threshold``, ``error_tolerance``).
        cells: every grid cell in grid order (the product of the grid lists, last key fastest).
        resources: ``[resources]``: ``cpus`` and ``gpus`` per cell, ``max_retries`` after a
            worker died (not part of the cells' hashes).
    """

    source: str
    name: str
    description: str
    quantities: tuple[str, ...]
    task_name: str
    base: dict[str, dict[str, Any]]
    grid: dict[str, list[Any]]
    table_rows: tuple[str, ...]
    table_quantities: tuple[str, ...]
    aggregate: str | None
    regime: dict[str, float]
    cells: tuple[Cell, ...]
    resources: dict[str, Any] = field(default_factory=lambda: {"cpus": None, "gpus": 0.0, "max_retries": 2})

    @property
    def columns(self) -> dict[str, str]:
        """Column name of each swept key in results (its field name when unique, else dotted)."""
        return column_names(list(self.grid))

    def describe(self) -> str:
        """The resolved config, compact: one line per section, swept keys as their value lists."""
        names = self.columns
        sizes = " x ".join(f"{names[k]}[{len(v)}]" for k, v in self.grid.items())
        n = len(self.cells)
        lines = [f"study {self.name} ({self.source}): {n} cell{'s' if n != 1 else ''}" + (f" = {sizes}" if sizes else "")]
        swept_values: dict[str, list[Any]] = {key: [] for key in self.grid}
        for cell in self.cells:
            for key, value in cell.params.items():
                if value not in swept_values[key]:
                    swept_values[key].append(value)
        first = self.cells[0].config
        for section in ("task", "model", "train"):
            items = []
            for key, value in first[section].items():
                dotted = f"{section}.{key}"
                shown = swept_values[dotted] if dotted in swept_values else value
                items.append(f"{key}={shown!r}" if isinstance(shown, str) else f"{key}={shown}")
            lines.append(f"  {section:<6} " + " ".join(items))
        lines.append(f"  quantities {', '.join(self.quantities)}")
        rows = ", ".join(names[k] for k in self.table_rows) or "-"
        pooled = f"; mean ± std over {names[self.aggregate]}" if self.aggregate else ""
        lines.append(f"  table  rows: {rows}{pooled}")
        lines.append(f"  regime drift_threshold={self.regime['drift_threshold']} error_tolerance={self.regime['error_tolerance']}")
        return "\n".join(lines)

    def default_run_dir(self) -> Path:
        return Path("runs") / self.name

    def run(
        self,
        out: str | Path | None = None,
        workers: int | None = None,
        executor: str = "local",
        cell_fn: Callable[[dict[str, Any]], CellOutput] | None = None,
        *,
        progress: bool = False,
        address: str | None = None,
    ) -> "Results":
        """Compute the cells that are not cached in the run directory and write the results.

        Args:
            out: run directory (default ``runs/<name>``).
            workers: worker processes (default ``os.cpu_count()``; 1 runs in this process).
            executor: "local" (worker processes here) or "ray" (one Ray task per cell, with the
                ``cpus``/``gpus`` of ``[resources]``); both write the same cells and cache, so a
                study started with one can be finished with the other.
            cell_fn: ``config -> CellOutput`` (default ``genlab.study._cell.run_cell``); with more
                than one worker it must be a picklable top-level function.
            progress: show a progress bar over the cells on stderr.
            address: Ray cluster address (executor "ray" only); None starts a local instance.

        A cell whose function raises is recorded with status "error" (its traceback in the cell
        file), shown as "error" in the results, and computed again on the next run.
        A cell whose worker process died is retried up to ``resources["max_retries"]`` times.
        Ctrl-C raises :class:`RunInterrupted` (a KeyboardInterrupt) after the workers are
        stopped; the cells finished so far are kept.
        """
        run_dir = Path(out) if out is not None else self.default_run_dir()
        if run_dir.exists() and not run_dir.is_dir():
            raise ValueError(f"out: {run_dir} exists and is not a directory")
        runner = make_executor(executor, workers, address=address, resources=self.resources)
        fn = cell_fn if cell_fn is not None else _default_cell_fn()

        started, start = _now(), time.perf_counter()
        (run_dir / CELLS_DIR).mkdir(parents=True, exist_ok=True)
        write_config(run_dir, self)
        records: dict[str, dict[str, Any]] = {}
        cached: set[str] = set()
        todo: dict[str, Cell] = {}
        for cell in self.cells:
            record = read_finished(run_dir, cell)
            if record is not None:
                records[cell.id] = record
                cached.add(cell.id)
            else:
                todo[cell.id] = cell

        with _Progress(progress, total=len(self.cells), cached=len(cached)) as bar:
            def on_done(result: CellResult) -> None:
                records[result.id] = write_cell(run_dir, todo[result.id], result)
                bar.done(result.status, result.id)

            try:
                runner.run(fn, [(cell.id, cell.config) for cell in todo.values()], on_done,
                           bar.step if progress else None)
            except KeyboardInterrupt:
                finished = sum(1 for record in records.values() if record["status"] in FINISHED)
                raise RunInterrupted(run_dir, len(self.cells), finished, finished - len(cached)) from None

        frame = results_frame(self, records)
        write_results(run_dir, frame)
        results = Results(self, run_dir, records, frame=frame, cached=cached)
        atomic_write(run_dir / "table.md", results.render("md"))
        write_provenance(run_dir, self, records, cached=cached, executor=runner.name, workers=runner.workers,
                         started=started, finished=_now(), wall_s=time.perf_counter() - start)
        return results


class _Progress:
    """A rich progress bar over cells on stderr (cached vs computed counts), or nothing."""

    def __init__(self, enabled: bool, *, total: int, cached: int) -> None:
        self.enabled, self.total = enabled, total
        self.counts = {"cached": cached, "computed": 0, "failed": 0}
        self._cells: dict[str, Any] = {}

    def _detail(self) -> str:
        c = self.counts
        return f"cached {c['cached']} · computed {c['computed']}" + (f" · failed {c['failed']}" if c["failed"] else "")

    def __enter__(self) -> "_Progress":
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
                                 TimeElapsedColumn(), console=Console(stderr=True))
            self._bar.start()
            self._task = self._bar.add_task("cells", total=self.total, completed=self.counts["cached"], detail=self._detail())
        return self

    def step(self, ident: str, step: int, total: int) -> None:
        """Training progress of a running cell: one sub-bar per cell, removed when it finishes."""
        if not self.enabled:
            return
        if ident not in self._cells:
            self._cells[ident] = self._bar.add_task("steps", total=total, detail=f"cell {ident[:8]}")
        self._bar.update(self._cells[ident], completed=step)

    def done(self, status: str, ident: str | None = None) -> None:
        self.counts["failed" if status not in FINISHED else "computed"] += 1
        if self.enabled:
            if ident in self._cells:
                self._bar.remove_task(self._cells.pop(ident))
            self._bar.update(self._task, advance=1, detail=self._detail())

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._bar.stop()


class Results:
    """The results of a study in a run directory: raw rows, the side-by-side table, curves.

    Attributes:
        study: the :class:`Study`.
        run_dir: the run directory.
        rows: one row per cell x quantity, as in results.csv.
        curves: cell id -> ``{curve quantity: {column: values}}``.
        cells: one row per cell: id, swept parameters, status, cached, wall_s.
        failed: ids of the cells whose function raised.
        missing: ids of the cells with no record yet (an interrupted run).
    """

    def __init__(self, study: Study, run_dir: Path, records: dict[str, dict[str, Any]], *,
                 frame: "pd.DataFrame | None" = None, cached: set[str] | None = None) -> None:
        self.study, self.run_dir = study, Path(run_dir)
        self._records = records
        self._frame = frame
        self._cached = set(cached or ())

    @property
    def rows(self) -> "pd.DataFrame":
        if self._frame is None:
            self._frame = results_frame(self.study, self._records)
        return self._frame

    @property
    def curves(self) -> dict[str, dict[str, dict[str, list[float]]]]:
        return {cell.id: (self._records[cell.id].get("output") or {}).get("curves", {})
                for cell in self.study.cells if cell.id in self._records}

    @property
    def cells(self) -> "pd.DataFrame":
        import pandas as pd

        names = self.study.columns
        out = []
        for cell in self.study.cells:
            record = self._records.get(cell.id, {})
            out.append({"cell": cell.id, **{names[k]: v for k, v in cell.params.items()},
                        "status": record.get("status", "missing"), "cached": cell.id in self._cached,
                        "wall_s": record.get("wall_s")})
        return pd.DataFrame(out, columns=["cell", *names.values(), "status", "cached", "wall_s"])

    @property
    def failed(self) -> list[str]:
        return [c.id for c in self.study.cells if c.id in self._records and self._records[c.id]["status"] not in FINISHED]

    @property
    def missing(self) -> list[str]:
        return [c.id for c in self.study.cells if c.id not in self._records]

    def theory_kind(self, ident: str, quantity: str) -> str:
        """What cell ``ident``'s prediction of ``quantity`` is: "value", or an "upper" / "lower"
        bound (genlab.quantities.PREDICTION_KINDS); "value" where the cell has no such row."""
        rows = ((self._records.get(ident) or {}).get("output") or {}).get("rows", [])
        return next((r.get("theory_kind", "value") for r in rows if r["quantity"] == quantity), "value")

    def error(self, ident: str) -> str | None:
        """The traceback of a failed cell."""
        return self._records.get(ident, {}).get("error")

    def _row_columns(self) -> list[str]:
        names = self.study.columns
        return [names[k] for k in self.study.table_rows]

    def summary(self) -> "pd.DataFrame":
        """The aggregated table with numbers: ``theory_kind``, ``theory_mean``, ``theory_std``,
        ``theory_n``, ..., ``bound_satisfied``, ``bound_n``, ``cells``, ``regime`` per (row labels,
        quantity, theory kind)."""
        return _table.summarize(self.rows, row_columns=self._row_columns(), quantities=list(self.study.table_quantities))

    def table(self) -> "pd.DataFrame":
        """The side-by-side table as displayed: row labels, quantity, theory, empirical, gap,
        regime (strings; "mean ± std" over the aggregated key). A bound reads "≤ x" / "≥ x" in
        the theory column and "satisfied" / "violated" (over seeds: "satisfied 3/3",
        "violated 1/3") in the gap column."""
        return _table.side_by_side(self.summary(), row_columns=self._row_columns())

    def note(self) -> str:
        parts = []
        if self.study.aggregate:
            key = self.study.columns[self.study.aggregate]
            n = len(self.study.grid[self.study.aggregate])
            parts.append(f"Mean ± std (ddof = 1) over {n} values of {key}.")
        if self.failed:
            parts.append(f"{len(self.failed)} cell(s) failed: see {CELLS_DIR}/<id>.json.")
        if self.missing:
            parts.append(f"{len(self.missing)} of {len(self.study.cells)} cells not computed yet.")
        return " ".join(parts)

    def render(self, fmt: str = "md") -> str:
        """The table as "md" (with the name and description above it), "latex" (booktabs) or "csv"."""
        return _table.render(self.table(), fmt, name=self.study.name, description=self.study.description, note=self.note())

    def _repr_html_(self) -> str:
        return _table.to_html(self.table(), name=self.study.name, description=self.study.description, note=self.note())

    def __rich__(self) -> "Table":
        return _table.to_rich(self.table(), name=self.study.name, description=self.study.description, note=self.note())

    def __repr__(self) -> str:
        return (f"Results(study={self.study.name!r}, run_dir={str(self.run_dir)!r}, cells={len(self.study.cells)}, "
                f"failed={len(self.failed)}, missing={len(self.missing)})")


def open_run(run_dir: str | Path) -> Results:
    """Read a run directory back (nothing is computed). Raises RunDirError if ``run_dir`` is not
    one, StudyConfigError if its config.toml no longer validates."""
    from genlab.study._schema import load

    run_dir = Path(run_dir)
    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / CELLS_DIR).is_dir():
        raise RunDirError(f"{run_dir} is not a run directory (expected {CONFIG_FILE} and {CELLS_DIR}/ in it)")
    study = load(run_dir / CONFIG_FILE)
    records = {}
    for cell in study.cells:
        record = read_record(cell_path(run_dir, cell.id))
        if record is not None:
            records[cell.id] = record
    return Results(study, run_dir, records)
