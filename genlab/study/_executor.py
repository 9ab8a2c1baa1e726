"""Executors: run the cell function over cells and hand each result back as it finishes.

``LocalExecutor(workers)`` runs in-process for one worker, else in a
``ProcessPoolExecutor`` of "spawn" processes (torch and fork do not mix). Each worker limits its
torch/OpenMP threads to ``max(1, cores // workers)`` so that the workers do not oversubscribe
the machine. The parent receives every :class:`CellResult` as soon as its cell finishes and
writes it; a cell function that raises gives a result of status ``"error"`` carrying the
traceback, and the other cells go on.
"""

from __future__ import annotations

import copy
import inspect
import os
import pickle
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing import get_context
from typing import Any

from genlab.study._output import CellOutput

EXECUTORS = ("local",)
CellFn = Callable[..., CellOutput]
#: ``on_progress(cell_id, step, total)``: training progress inside a running cell.
ProgressFn = Callable[[str, int, int], None]
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class CellResult:
    """What running one cell gave.

    Attributes:
        id: the cell id.
        status: "ok" or "diverged" (from the CellOutput), or "error" (the cell function raised
            or returned something else than a CellOutput).
        output: ``CellOutput.to_dict()`` (JSON-safe), None on error.
        error: the traceback on error, else None.
        wall_s: wall-clock seconds of the cell function.
        started, finished: ISO 8601 UTC timestamps.
    """

    id: str
    status: str
    output: dict[str, Any] | None
    error: str | None
    wall_s: float
    started: str
    finished: str


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json_safe(value: Any) -> Any:
    """Numpy / torch scalars and arrays as plain Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "tolist"):
        return _json_safe(value.tolist())
    if hasattr(value, "item"):
        return _json_safe(value.item())
    raise TypeError(f"cell output holds a {type(value).__name__}, which is not JSON-serialisable")


def _limit_threads(threads: int | None) -> None:
    if threads is None:
        return
    for variable in _THREAD_VARIABLES:
        os.environ[variable] = str(threads)
    if "torch" in sys.modules:  # already imported (a worker's second cell): set it directly
        sys.modules["torch"].set_num_threads(threads)


def _accepts_progress(cell_fn: CellFn) -> bool:
    try:
        return "progress" in inspect.signature(cell_fn).parameters
    except (TypeError, ValueError):
        return False


def execute_cell(
    cell_fn: CellFn, ident: str, config: dict[str, Any], threads: int | None = None, progress_queue: Any = None
) -> CellResult:
    """Run ``cell_fn`` on a copy of ``config`` and capture its result; never raises for a cell's
    own failure. Runs in the worker process. A cell function with a ``progress`` parameter gets
    a callback ``progress(step, total)`` whose calls reach the parent through ``progress_queue``
    (a callable in-process, a manager queue across processes)."""
    _limit_threads(threads)
    kwargs: dict[str, Any] = {}
    if progress_queue is not None and _accepts_progress(cell_fn):
        send = progress_queue if callable(progress_queue) else progress_queue.put
        kwargs["progress"] = lambda step, total: send((ident, step, total))
    started, start = _now(), time.perf_counter()
    try:
        output = cell_fn(copy.deepcopy(config), **kwargs)
        if not isinstance(output, CellOutput):
            raise TypeError(f"the cell function returned {type(output).__name__}; expected a CellOutput")
        if output.status not in ("ok", "diverged"):
            raise ValueError(f"CellOutput.status must be 'ok' or 'diverged'; got {output.status!r}")
        data = _json_safe(output.to_dict())
        status, error = output.status, None
    except Exception:
        data, status, error = None, "error", traceback.format_exc()
    return CellResult(ident, status, data, error, time.perf_counter() - start, started, _now())


class LocalExecutor:
    """Run cells on this machine with ``workers`` processes (default ``os.cpu_count()``)."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
            raise ValueError(f"workers must be None or an int >= 1; got {workers!r}")
        self.workers = workers or os.cpu_count() or 1

    def run(
        self,
        cell_fn: CellFn,
        items: Sequence[tuple[str, dict[str, Any]]],
        on_done: Callable[[CellResult], None],
        on_progress: ProgressFn | None = None,
    ) -> None:
        """Run ``cell_fn`` on each ``(id, config)``; call ``on_done`` in this process as each
        finishes, and ``on_progress(id, step, total)`` as running cells report training steps."""
        n = min(self.workers, len(items))
        if n <= 1:
            forward = None if on_progress is None else (lambda message: on_progress(*message))
            for ident, config in items:
                on_done(execute_cell(cell_fn, ident, config, progress_queue=forward))
            return
        try:
            pickle.dumps(cell_fn)
        except Exception as exc:
            raise ValueError(
                f"cell_fn must be picklable (a top-level function) to run in {n} worker processes; "
                f"pass workers=1 to run it in-process ({exc})"
            ) from None
        threads = max(1, (os.cpu_count() or 1) // n)
        context = get_context("spawn")
        manager = context.Manager() if on_progress is not None else None
        queue = manager.Queue() if manager is not None else None

        def drain() -> None:
            while queue is not None and not queue.empty():
                on_progress(*queue.get_nowait())

        try:
            with ProcessPoolExecutor(n, mp_context=context, initializer=_limit_threads, initargs=(threads,)) as pool:
                futures = {pool.submit(execute_cell, cell_fn, ident, config, threads, queue): ident for ident, config in items}
                pending = set(futures)
                try:
                    while pending:
                        finished, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
                        drain()
                        for future in finished:
                            try:
                                result = future.result()
                            except BrokenProcessPool as exc:
                                now = _now()
                                result = CellResult(futures[future], "error", None, f"worker process died: {exc}", 0.0, now, now)
                            on_done(result)
                except BaseException:
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
        finally:
            if manager is not None:
                manager.shutdown()


def make_executor(name: str, workers: int | None) -> LocalExecutor:
    """The executor called ``name`` (one of :data:`EXECUTORS`)."""
    if name == "local":
        return LocalExecutor(workers)
    raise ValueError(f"executor must be one of {', '.join(map(repr, EXECUTORS))}; got {name!r}")
