"""torch.distributed plumbing shared by the parallel optimizers and their runner.

Workers are processes of one ``torch.distributed`` process group (gloo on CPU, nccl for CUDA
tensors), launched by ``torchrun`` or by ``torch.multiprocessing`` spawning the same entry
point; both set ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. Every collective
here is a plain ``torch.distributed`` call; there is no protocol of our own.

Without an initialised process group every helper acts as the one-worker group (rank 0 of 1),
so that the optimizers run unchanged in a single process.

Elastic state: the state a restarted group resumes from (the center variable of EASGD, the
leader of LSGD, the averaged parameters of local / data-parallel SGD, and the round counter) is
written atomically (a temporary file in the same folder, then ``os.replace``) and read back
with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "all_gather_vectors",
    "all_reduce_sum",
    "flat_params",
    "free_port",
    "init_from_env",
    "load_state",
    "rank",
    "save_state",
    "set_flat_params",
    "world_size",
]


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This worker's rank (0 without a process group)."""
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    """Number of workers in the group (1 without a process group)."""
    return dist.get_world_size() if _active() else 1


def init_from_env(backend: str = "auto", timeout_s: float = 600.0) -> str:
    """Join the process group described by the launcher's environment; returns the backend.

    ``backend="auto"`` picks nccl when CUDA is available, else gloo. ``timeout_s`` bounds every
    collective; it is long because a dead peer is detected by torchrun's agent (which watches the
    worker processes and restarts the group), not by the timeout, while a restarted group on a
    busy machine can take minutes to reach its first collective (measured: > 120 s at load 12
    on 2 cores).
    """
    import datetime

    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"parallel.backend must be 'auto', 'gloo' or 'nccl'; got {backend!r}")
    if _active():
        return backend
    timeout = datetime.timedelta(seconds=timeout_s)
    if "TORCHELASTIC_RESTART_COUNT" not in os.environ:  # spawned or plain launch: env:// as usual
        dist.init_process_group(backend=backend, timeout=timeout)
        return backend
    # Under torchrun the workers talk through the agent's store, which outlives a restart of the
    # group; the keys of the previous incarnation (e.g. gloo's listening addresses of dead
    # workers) are still there and a restarted group reads them (measured: "connectFullMesh
    # failed ... Connection refused" after a kill, torch 2.13). A prefix unique to this
    # incarnation (restart count and world size: a restart after a failure increments the first,
    # a membership change alters the second) keeps each incarnation's keys apart.
    rank_, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                          is_master=not agent_store and rank_ == 0, timeout=timeout, multi_tenant=not agent_store)
    prefix = f"genlab/restart{os.environ['TORCHELASTIC_RESTART_COUNT']}/world{world}"
    dist.init_process_group(backend=backend, store=dist.PrefixStore(prefix, store), rank=rank_, world_size=world,
                            timeout=timeout)
    return backend


def free_port() -> int:
    """A TCP port free on this host now (for ``MASTER_PORT`` of a spawned group)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def flat_params(params: Iterable[torch.Tensor]) -> torch.Tensor:
    """The parameters concatenated into one new 1-D tensor (a copy)."""
    return torch.cat([p.detach().reshape(-1) for p in params]).clone()


@torch.no_grad()
def set_flat_params(params: Iterable[torch.Tensor], vector: torch.Tensor) -> None:
    """Copy a 1-D vector (in :func:`flat_params` order) into the parameters, in place."""
    offset = 0
    for p in params:
        n = p.numel()
        p.copy_(vector[offset:offset + n].view_as(p))
        offset += n
    if offset != vector.numel():
        raise ValueError(f"vector has {vector.numel()} entries; the parameters have {offset}")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over the workers, in place; returns it."""
    if _active() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_vectors(vector: torch.Tensor) -> list[torch.Tensor]:
    """Every worker's copy of ``vector`` (same shape on all), in rank order."""
    if not (_active() and dist.get_world_size() > 1):
        return [vector.clone()]
    out = [torch.empty_like(vector) for _ in range(dist.get_world_size())]
    dist.all_gather(out, vector.contiguous())
    return out


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


class ParallelOptimizer(torch.optim.Optimizer):
    """Base of the parallel optimizers: plain SGD steps on this worker, an exchange every ``tau``.

    One *round* is ``tau`` local steps ``x <- x - lr * g(x)`` (``g`` this worker's minibatch
    gradient) followed by one exchange with the other workers (:meth:`communicate`, defined by
    the subclass). All workers start from rank 0's parameters (broadcast at construction), which
    are also the initial center. Parameters are handled as one flat vector in ``params`` order.

    Attributes after each exchange: ``rounds`` (exchanges done), ``spread`` (mean over workers of
    ``||x_i - x_ref||`` just before the exchange, ``x_ref`` the method's center or leader).
    """

    def __init__(self, params: Iterable[torch.Tensor], *, lr: float, tau: int) -> None:
        if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0):
            raise ValueError(f"lr must be a number > 0; got {lr!r}")
        if isinstance(tau, bool) or not isinstance(tau, int) or tau < 1:
            raise ValueError(f"tau must be an integer >= 1; got {tau!r}")
        super().__init__(params, {"lr": float(lr)})
        self.tau = tau
        self.local_steps = 0
        self.rounds = 0
        self.spread = 0.0
        self._round_loss = 0.0
        self._round_count = 0
        with torch.no_grad():
            if _active() and dist.get_world_size() > 1:
                for p in self._params():
                    dist.broadcast(p, src=0)
        self._center = flat_params(self._params())

    def _params(self) -> list[torch.Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def vector(self) -> torch.Tensor:
        """This worker's parameters as one flat vector (a copy)."""
        return flat_params(self._params())

    def center(self) -> torch.Tensor:
        """The method's center variable (EASGD), leader (LSGD) or average (a copy)."""
        return self._center.clone()

    def load_center(self, center: torch.Tensor) -> None:
        """Resume from ``center``: this worker's parameters and the center both become it."""
        center = center.to(self._center.device, self._center.dtype)
        set_flat_params(self._params(), center)
        self._center = center.clone()

    def _reduce_gradients(self) -> None:
        """Hook run before each local step (data-parallel SGD averages gradients here)."""

    @torch.no_grad()
    def step(self, closure: Any = None, *, loss: float | None = None) -> bool:  # type: ignore[override]
        """One SGD step on this worker; every ``tau``-th step ends a round with an exchange.

        Args:
            closure: unused (gradients must already be in ``.grad``); accepted for the
                torch.optim signature.
            loss: this step's minibatch loss (LSGD picks its leaders from the mean over a round).

        Returns:
            Whether this step ended a round (an exchange took place).
        """
        self._reduce_gradients()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])
        if loss is not None:
            self._round_loss += float(loss)
            self._round_count += 1
        self.local_steps += 1
        if self.local_steps % self.tau:
            return False
        round_loss = self._round_loss / max(self._round_count, 1)
        self._round_loss, self._round_count = 0.0, 0
        self.communicate(round_loss)
        self.rounds += 1
        return True

    def communicate(self, round_loss: float) -> None:
        """The exchange at the end of a round; sets ``self.spread`` and the center."""
        raise NotImplementedError

    def _mean_distance(self, x: torch.Tensor, reference: torch.Tensor) -> float:
        """Mean over workers of ``||x_i - reference||`` (one scalar all-reduce)."""
        d = torch.linalg.vector_norm(x - reference).reshape(1).to(torch.float64)
        return float(all_reduce_sum(d).item()) / world_size()
