"""Executors: run the cell function over cells and hand each result back as it finishes.

``LocalExecutor(workers)`` runs in-process for one worker, else in ``workers`` "spawn" processes
(torch and fork do not mix), each fed one cell at a time through its own pipe, so that the
parent always knows which cell a worker is running. Each worker limits its torch/OpenMP threads
to ``cpus`` (default ``max(1, cores // workers)``) so that the workers do not oversubscribe the
machine. ``RayExecutor`` runs each cell as a Ray task (``cpus`` and ``gpus`` resources per
cell) on a local Ray instance or the cluster at ``address``; ray is imported only there.

Failures never lose the other cells. A cell function that raises (including ``MemoryError``)
gives a result of status ``"error"`` carrying the traceback, at once: the same config would
raise again. A worker process that dies under a cell (killed, segfault, out-of-memory killer)
is replaced and the cell retried, up to ``max_retries`` times, then recorded as ``"error"``
with the exit status. Workers ignore SIGINT: on Ctrl-C the parent terminates them and the
KeyboardInterrupt reaches the caller; finished cells are already written.
"""

from __future__ import annotations

import copy
import inspect
import os
import pickle
import signal
import sys
import time
import traceback
import warnings
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from multiprocessing import get_context
from typing import Any

from genlab._checks import integer, real
from genlab.study._output import CellOutput

EXECUTORS = ("local", "ray")
#: Default number of times a cell whose worker process died is run again.
MAX_RETRIES = 2
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


def _check_count(value: int | None, name: str, minimum: int) -> None:
    if value is not None:
        integer(value, name, minimum=minimum, expected=f"None or an int >= {minimum}")


def _died(ident: str, attempts: int, reason: str) -> CellResult:
    now = _now()
    times = "once" if attempts == 1 else f"on each of {attempts} attempts"
    return CellResult(ident, "error", None, f"worker process died {times}: {reason}", 0.0, now, now)


def _worker_loop(conn: Any, threads: int | None) -> None:
    """A local worker process: run the cells sent over ``conn`` one at a time, send back
    ``("progress", (id, step, total))`` messages and one ``("done", CellResult)`` per cell."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and terminates us
    _limit_threads(threads)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        cell_fn, ident, config = message
        try:
            result = execute_cell(cell_fn, ident, config, threads, lambda m: conn.send(("progress", m)))
            conn.send(("done", result))
        except OSError:  # the parent is gone (killed): nobody to report to
            return


class LocalExecutor:
    """Run cells on this machine with ``workers`` processes (default ``os.cpu_count()``).

    Args:
        workers: worker processes; 1 runs the cells in this process (no isolation, no retry).
        max_retries: times a cell whose worker process died is run again (default 2).
        cpus: torch/OpenMP threads per worker (default ``max(1, cores // workers)``).
    """

    name = "local"

    def __init__(self, workers: int | None = None, *, max_retries: int = MAX_RETRIES, cpus: int | None = None) -> None:
        _check_count(workers, "workers", 1)
        _check_count(max_retries, "max_retries", 0)
        _check_count(cpus, "cpus", 1)
        self.workers = workers or os.cpu_count() or 1
        self.max_retries, self.cpus = max_retries, cpus

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
        threads = self.cpus or max(1, (os.cpu_count() or 1) // n)
        _Pool(get_context("spawn"), n, threads, self.max_retries).run(cell_fn, items, on_done, on_progress)


class _Pool:
    """``n`` spawn processes, each running one cell at a time; a dead one is replaced."""

    def __init__(self, context: Any, n: int, threads: int, max_retries: int) -> None:
        self.context, self.n, self.threads, self.max_retries = context, n, threads, max_retries
        self.slots: list[tuple[Any, Any]] = []

    def _spawn(self) -> tuple[Any, Any]:
        parent, child = self.context.Pipe()
        process = self.context.Process(target=_worker_loop, args=(child, self.threads), daemon=True)
        process.start()
        child.close()
        return parent, process

    def run(self, cell_fn: CellFn, items: Sequence[tuple[str, dict[str, Any]]],
            on_done: Callable[[CellResult], None], on_progress: ProgressFn | None) -> None:
        from multiprocessing.connection import wait as wait_any

        queue = deque(items)
        attempts: Counter[str] = Counter()
        busy: dict[int, tuple[str, dict[str, Any]]] = {}
        try:
            self.slots = [self._spawn() for _ in range(self.n)]
            while queue or busy:
                for i, (conn, _) in enumerate(self.slots):
                    if i not in busy and queue:
                        ident, config = queue.popleft()
                        attempts[ident] += 1
                        busy[i] = (ident, config)
                        try:
                            conn.send((cell_fn, ident, config))
                        except OSError:  # the worker just died: its sentinel reports it below
                            pass
                handles = [h for conn, process in self.slots for h in (conn, process.sentinel)]
                ready = set(wait_any(handles))
                for i, (conn, process) in enumerate(self.slots):
                    if conn not in ready and process.sentinel not in ready:
                        continue
                    try:
                        while conn.poll():
                            kind, payload = conn.recv()
                            if kind == "done":
                                busy.pop(i, None)
                                on_done(payload)
                            elif on_progress is not None:
                                on_progress(*payload)
                    except (EOFError, OSError):
                        pass
                    if process.is_alive():
                        continue
                    process.join()
                    conn.close()
                    if i in busy:
                        ident, config = busy.pop(i)
                        if attempts[ident] <= self.max_retries:
                            queue.appendleft((ident, config))
                        else:
                            on_done(_died(ident, attempts[ident], f"exit code {process.exitcode}"))
                    self.slots[i] = self._spawn()
        finally:
            self._stop()

    def _stop(self) -> None:
        """Ask idle workers to exit, terminate busy ones, and reap all."""
        for conn, process in self.slots:
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            if process.is_alive():
                process.terminate()
        for conn, process in self.slots:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
            conn.close()
        self.slots = []


class RayExecutor:
    """Run each cell as a Ray task, on a local Ray instance or the cluster at ``address``.

    Args:
        workers: with no address, the CPUs of the local Ray instance started here (default
            ``os.cpu_count()``); ignored when joining a cluster.
        address: a Ray cluster address (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``);
            None starts a local instance for this run and shuts it down afterwards. If Ray is
            already initialised in this process, that instance is used.
        max_retries: times a cell whose worker process died is run again (Ray's own task
            retry on system failures; a cell's exception is not retried).
        cpus, gpus: resources one cell needs (threads per cell = ``cpus``).

    Results come back to this process and are written into the same run directory and cache
    as with the local executor. Training progress inside cells is not forwarded.
    """

    name = "ray"

    def __init__(self, workers: int | None = None, *, address: str | None = None, max_retries: int = MAX_RETRIES,
                 cpus: int | None = None, gpus: float = 0.0) -> None:
        _check_count(workers, "workers", 1)
        _check_count(max_retries, "max_retries", 0)
        _check_count(cpus, "cpus", 1)
        real(gpus, "gpus", low=0.0, finite=False, expected="a number >= 0")
        self.workers = workers or os.cpu_count() or 1
        self.address, self.max_retries, self.cpus, self.gpus = address, max_retries, cpus or 1, float(gpus)

    def run(
        self,
        cell_fn: CellFn,
        items: Sequence[tuple[str, dict[str, Any]]],
        on_done: Callable[[CellResult], None],
        on_progress: ProgressFn | None = None,
    ) -> None:
        """Submit every cell, then call ``on_done`` here as each task finishes."""
        if not items:
            return
        import ray
        from ray.exceptions import RayError, RayTaskError

        started_here = not ray.is_initialized()
        if started_here:
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            if self.address is None:
                options["num_cpus"] = self.workers
            with warnings.catch_warnings():  # Ray forks and execs its daemons at once: jax's fork warning is moot
                warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
                ray.init(address=self.address, **options)
        task = ray.remote(execute_cell).options(num_cpus=self.cpus, num_gpus=self.gpus,
                                                max_retries=self.max_retries, retry_exceptions=False)
        refs = {task.remote(cell_fn, ident, config, self.cpus, None): ident for ident, config in items}
        pending = list(refs)
        try:
            while pending:
                finished, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                for ref in finished:
                    try:
                        result = ray.get(ref)
                    except RayTaskError as exc:  # execute_cell itself raised (not the cell): keep its text
                        now = _now()
                        result = CellResult(refs[ref], "error", None, str(exc), 0.0, now, now)
                    except RayError as exc:  # the worker died on every attempt
                        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        result = _died(refs[ref], self.max_retries + 1, f"{type(exc).__name__}: {reason}")
                    on_done(result)
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started_here:
                ray.shutdown()


def make_executor(name: str, workers: int | None, *, address: str | None = None,
                  resources: dict[str, Any] | None = None) -> "LocalExecutor | RayExecutor":
    """The executor called ``name`` (one of :data:`EXECUTORS`); ``resources`` holds the
    study's ``[resources]`` (``cpus``, ``gpus``, ``max_retries``)."""
    resources = dict(resources or {})
    max_retries = resources.get("max_retries", MAX_RETRIES)
    if name == "local":
        if address is not None:
            raise ValueError("address is only used with executor 'ray'")
        return LocalExecutor(workers, max_retries=max_retries, cpus=resources.get("cpus"))
    if name == "ray":
        return RayExecutor(workers, address=address, max_retries=max_retries, cpus=resources.get("cpus"),
                           gpus=resources.get("gpus", 0.0))
    raise ValueError(f"executor must be one of {', '.join(map(repr, EXECUTORS))}; got {name!r}")
