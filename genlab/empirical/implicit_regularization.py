"""SGD's implicit regularizer, measured (mirrors genlab.theory.implicit_regularization): Smith,
Dherin, Barrett & De 2021, "On the origin of implicit regularization in stochastic gradient
descent", ICLR.

:func:`sgd_epoch_mean` runs one epoch of SGD on least squares in every order of a fixed
partition into mini-batches and averages the end points (the mean iterate of Smith et al. 2021).

For any network and loss of a cell, the mini-batches are a fixed seeded partition of the training
set (the first epoch's: ``randperm(n)`` seeded with ``train.seed``, cut into m = n // B batches of
B = ``train.batch_size``; full batch: m = 1), and L_k is the objective SGD steps on for batch k (``loss_scale`` x mean loss plus the
weight decay term), so L = (1/m) sum_k L_k when B divides n. Smith et al. show that, averaged over
the order of the batches, one epoch of SGD with learning rate eta follows the gradient flow of the
modified loss

    L_SGD(theta) = L(theta) + (eta / 4) G(theta),   G(theta) = (1/m) sum_k ||grad L_k(theta)||^2,

for time m eta, with an error O(m^3 eta^3), while plain gradient flow on L is off by O(m^2 eta^2).

- ``batch_gradient_norm`` = G(theta_T) at the end of training, ``batch_gradient_norm_init`` =
  G(theta_0); for full-batch GD, G = ||grad L||^2 (the regularizer of Barrett & De 2021);
- ``full_gradient_norm`` = ||grad L(theta_T)||^2 and ``gradient_noise`` = V(theta_T) = (1/n)
  sum_i ||grad L_i - grad L||^2 (L_i the one-sample objective): batch-size free, so SGD and GD
  cells compare on them; over random partitions E G = ||grad L||^2 + (n - B)/(B (n - 1)) V.
  These three are recorded by a hook at every measured step: their curves are against the
  flow time t = lr * step;
- ``sgd_epoch_error_flow`` = ||D_SGD - D_flow|| / ||D_SGD|| and ``sgd_epoch_error_modified`` =
  ||D_SGD - D_mod|| / ||D_SGD|| at theta_T (:func:`sgd_epoch_test`): D_SGD the mean displacement
  of one SGD epoch over orders of the batches, D_flow / D_mod the displacements of the flows of L
  and of L_SGD for time m eta (RK4). Relative errors: ~eta^1 and ~eta^2 (absolute eta^2, eta^3);
- ``sgd_epoch_mc_error`` = ||standard error of D_SGD|| / ||D_SGD||, 0 when all m! orders are run.

These need plain SGD/GD (no momentum) at a constant final learning rate ("constant" or
"warmup_constant" schedule) and B dividing n; otherwise they are None (G needs neither).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from genlab.empirical._context import EmpiricalContext
from genlab.empirical._train import Hook
from genlab.linear import batch_quadratics
from genlab.quantities import Curve, Measurement
from genlab.settings import TrainSettings


def sgd_epoch_mean(x: Any, y: Any, batches: Any, w0: Any, lr: float) -> np.ndarray:
    """Mean over all m! orders of the batches of one SGD epoch on least squares from ``w0``:
    w <- w - lr (A_k w - c_k) for each batch k in turn (torch.optim.SGD on a float64 parameter,
    the batch loss ||X_k w - y_k||^2 / (2 B_k)). m! runs: keep m <= 6."""
    import itertools

    a, _ = batch_quadratics(x, y, batches)  # validates the batches
    m = a.shape[0]
    if m > 6:
        raise ValueError(f"batches must hold at most 6 mini-batches (m! orders are run); got {m}")
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64))
    yt = torch.as_tensor(np.asarray(y, dtype=np.float64).reshape(-1))
    index = [torch.as_tensor(np.asarray(b, dtype=np.int64)) for b in batches]
    total = torch.zeros(xt.shape[1], dtype=torch.float64)
    for order in itertools.permutations(range(m)):
        w = torch.nn.Parameter(torch.as_tensor(np.asarray(w0, dtype=np.float64).reshape(-1)).clone())
        optimizer = torch.optim.SGD([w], lr=lr)
        for k in order:
            optimizer.zero_grad(set_to_none=True)
            loss = 0.5 * ((xt[index[k]] @ w - yt[index[k]]) ** 2).mean()
            loss.backward()
            optimizer.step()
        total += w.detach()
    return (total / math.factorial(m)).numpy()


# ---------------------------------------------------------------------------------------------
# On a network of a cell.

#: Mini-batch counts up to which the epoch test averages over all m! orders (exact expectation).
ALL_ORDERS_MAX_BATCHES = 5
#: Random orders (each run with its reverse) when m > ALL_ORDERS_MAX_BATCHES.
EPOCH_ORDERS = 8
#: RK4 sub-steps per SGD step (of length lr) when integrating the flows.
FLOW_SUBSTEPS = 16


class BatchObjective:
    """The objective SGD steps on, as a function of the flat trainable parameter vector theta:
    ``L_B(theta) = loss_scale * mean_{i in B} loss_i + (weight_decay / 2) ||theta||^2`` (the
    convention of genlab.empirical._train), evaluated with ``torch.func.functional_call``.

    Args:
        module: the network (its trainable parameters define theta; buffers and frozen
            parameters are held fixed).
        loss: "mse", "cross_entropy", "logistic" or "squared_hinge".
        weight_decay: the L2 coefficient of the training objective.
    """

    def __init__(self, module: nn.Module, loss: str, weight_decay: float = 0.0) -> None:
        self.module, self.loss, self.weight_decay = module, loss, float(weight_decay)
        self.scale = float(getattr(module, "loss_scale", 1.0))
        trainable = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
        self.names = [name for name, _ in trainable]
        self.shapes = [p.shape for _, p in trainable]
        self.fixed = {name: p.detach() for name, p in module.named_parameters() if not p.requires_grad}
        self.fixed.update(dict(module.named_buffers()))

    def flat(self) -> torch.Tensor:
        """The module's current theta (a detached copy)."""
        return torch.cat([p.detach().reshape(-1) for p in self.module.parameters() if p.requires_grad]).clone()

    def __call__(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from torch.func import functional_call

        from genlab.empirical._train import per_sample_loss

        params, start = dict(self.fixed), 0
        for name, shape in zip(self.names, self.shapes):
            size = math.prod(shape)
            params[name] = theta[start : start + size].view(shape)
            start += size
        value = self.scale * per_sample_loss(functional_call(self.module, params, (x,)), y, self.loss).mean()
        if self.weight_decay:
            value = value + 0.5 * self.weight_decay * (theta**2).sum()
        return value

    def gradient(self, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, create_graph: bool = False) -> torch.Tensor:
        """grad L_B(theta) (differentiable in theta when ``create_graph``)."""
        if not create_graph:
            theta = theta.detach().requires_grad_(True)
        return torch.autograd.grad(self(theta, x, y), theta, create_graph=create_graph)[0]


def epoch_batches(n: int, batch_size: int | None, seed: int) -> list[np.ndarray]:
    """The fixed partition of one epoch: ``torch.randperm(n)`` seeded with ``seed`` (the first
    epoch of genlab.empirical._train with train.seed = seed) cut into n // B batches of B (the
    remainder dropped, as training does); ``batch_size`` None or >= n: one batch of all n."""
    if batch_size is None or batch_size >= n:
        return [np.arange(n)]
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    m = n // batch_size
    return [order[k * batch_size : (k + 1) * batch_size] for k in range(m)]


def _tensors(objective: BatchObjective, x: Any, y: Any, batches: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    ref = next(iter(objective.module.parameters()))
    xt = torch.as_tensor(np.asarray(x)).to(ref.device, ref.dtype)
    yt = torch.as_tensor(np.asarray(y)).to(ref.device, ref.dtype)
    if yt.ndim != 2 or yt.shape[0] != xt.shape[0]:
        raise ValueError(f"y must have shape (n, k) with n = {xt.shape[0]}; got {tuple(yt.shape)}")
    index = [torch.as_tensor(np.asarray(b, dtype=np.int64), device=ref.device) for b in batches]
    if not index or any(len(b) == 0 for b in index):
        raise ValueError("batches must be a non-empty list of non-empty index arrays")
    return [(xt[b], yt[b]) for b in index]


def batch_gradient_norm_of(objective: BatchObjective, theta: torch.Tensor, x: Any, y: Any, batches: Any) -> float:
    """G(theta) = (1/m) sum_k ||grad L_k(theta)||^2 over the m mini-batches ``batches``
    (Smith et al. 2021, the regularizer of SGD's modified loss)."""
    data = _tensors(objective, x, y, batches)
    return float(sum(objective.gradient(theta, xb, yb).pow(2).sum() for xb, yb in data) / len(data))


def per_sample_gradients(objective: BatchObjective, theta: torch.Tensor, x: Any, y: Any) -> torch.Tensor:
    """(n, p) gradients of the one-sample objectives L_{i}(theta) (torch.func.vmap over grad)."""
    from torch.func import grad, vmap

    (xt, yt), = _tensors(objective, x, y, [np.arange(len(x))])
    one = lambda th, xi, yi: objective(th, xi[None], yi[None])  # noqa: E731
    return vmap(grad(one), in_dims=(None, 0, 0))(theta.detach(), xt, yt)


def gradient_statistics(objective: BatchObjective, theta: torch.Tensor, x: Any, y: Any) -> tuple[float, float]:
    """(||grad L||^2, V) with V = (1/n) sum_i ||grad L_i - grad L||^2 the trace of the per-sample
    gradient covariance. Over uniformly random partitions into batches of B (without
    replacement), E G = ||grad L||^2 + (n - B) / (B (n - 1)) V: GD's regularizer (Barrett & De
    2021) plus the noise term that only SGD's carries (Smith et al. 2021)."""
    grads = per_sample_gradients(objective, theta, x, y)
    mean = grads.mean(0)
    return float(mean.pow(2).sum()), float((grads - mean).pow(2).sum(1).mean())


def modified_gradient(objective: BatchObjective, theta: torch.Tensor, data: list[tuple[torch.Tensor, torch.Tensor]],
                      lr: float, *, modified: bool = True) -> torch.Tensor:
    """grad L(theta) = (1/m) sum_k grad L_k(theta), plus (lr/4) grad G(theta) when ``modified``
    (G's gradient by double backward: grad ||g_k||^2 = 2 H_k g_k)."""
    theta = theta.detach().requires_grad_(True)
    grads = [objective.gradient(theta, xb, yb, create_graph=modified) for xb, yb in data]
    mean = sum(g.detach() for g in grads) / len(grads)
    if not modified:
        return mean
    big_g = sum(g.pow(2).sum() for g in grads) / len(grads)
    return mean + lr / 4 * torch.autograd.grad(big_g, theta)[0]


def gradient_flow(objective: BatchObjective, theta0: torch.Tensor, x: Any, y: Any, batches: Any, lr: float, *,
                  modified: bool = True, substeps: int = FLOW_SUBSTEPS) -> torch.Tensor:
    """theta(m lr) for d theta / dt = -grad L_SGD(theta) (``modified``) or -grad L(theta) from
    ``theta0``, m = len(batches): classical RK4 with ``substeps`` steps per SGD step (h = lr /
    substeps; local error O(h^5), far below the O(lr^3) effect measured)."""
    data = _tensors(objective, x, y, batches)
    field_ = lambda th: -modified_gradient(objective, th, data, lr, modified=modified)  # noqa: E731
    theta, h = theta0.detach().clone(), lr / substeps
    for _ in range(len(data) * substeps):
        k1 = field_(theta)
        k2 = field_(theta + h / 2 * k1)
        k3 = field_(theta + h / 2 * k2)
        k4 = field_(theta + h * k3)
        theta = theta + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return theta


def sgd_epoch_displacement(objective: BatchObjective, theta0: torch.Tensor, x: Any, y: Any, batches: Any, lr: float, *,
                           orders: int = EPOCH_ORDERS, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean displacement over orders of the batches of one SGD epoch theta <- theta - lr grad
    L_k(theta) from ``theta0``, and its Monte Carlo standard error (a vector).

    m <= ALL_ORDERS_MAX_BATCHES: every one of the m! orders (exact mean, standard error 0).
    Otherwise ``orders`` random orders (seeded), each run together with its reverse: the
    O(lr^2) term of an epoch, lr^2 sum_{j<k} H_k g_j, averages over an order and its reverse to
    (lr^2/2) sum_{j != k} H_k g_j, its mean over all orders, so the pairs fluctuate only at
    O(lr^3) and the standard error (over the pair means) is O(lr^3 / sqrt(orders)).
    """
    import itertools

    data = _tensors(objective, x, y, batches)
    m = len(data)

    def epoch(order: Any) -> torch.Tensor:
        theta = theta0.detach().clone()
        for k in order:
            theta = theta - lr * objective.gradient(theta, *data[k])
        return theta - theta0

    if m <= ALL_ORDERS_MAX_BATCHES:
        runs = torch.stack([epoch(order) for order in itertools.permutations(range(m))])
        return runs.mean(0), torch.zeros_like(theta0)
    if orders < 2:
        raise ValueError(f"orders must be >= 2 (the standard error needs 2 pairs); got {orders}")
    generator = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(orders):
        order = torch.randperm(m, generator=generator).tolist()
        pairs.append((epoch(order) + epoch(order[::-1])) / 2)
    runs = torch.stack(pairs)
    return runs.mean(0), runs.std(0) / math.sqrt(orders)


def sgd_epoch_test(objective: BatchObjective, theta0: torch.Tensor, x: Any, y: Any, batches: Any, lr: float, *,
                   orders: int = EPOCH_ORDERS, seed: int = 0, substeps: int = FLOW_SUBSTEPS) -> dict[str, float]:
    """One epoch of SGD from ``theta0`` against the two flows for time m lr (Smith et al. 2021):
    ``error_flow`` = ||D_SGD - D_flow|| / ||D_SGD||, ``error_modified`` = ||D_SGD - D_mod|| /
    ||D_SGD||, ``mc_error`` = ||standard error of D_SGD|| / ||D_SGD||, ``displacement`` = ||D_SGD||."""
    mean, stderr = sgd_epoch_displacement(objective, theta0, x, y, batches, lr, orders=orders, seed=seed)
    flow = gradient_flow(objective, theta0, x, y, batches, lr, modified=False, substeps=substeps) - theta0
    mod = gradient_flow(objective, theta0, x, y, batches, lr, modified=True, substeps=substeps) - theta0
    size = float(mean.norm())
    return {
        "error_flow": float((mean - flow).norm()) / size,
        "error_modified": float((mean - mod).norm()) / size,
        "mc_error": float(stderr.norm()) / size,
        "displacement": size,
    }


def _sgd_applicable(ctx: EmpiricalContext) -> bool:
    """Plain SGD/GD at a constant final learning rate with B dividing n (the epoch analysis)."""
    s, n = ctx.settings, len(ctx.x_train)
    return (
        not ctx.run.diverged and s.optimizer in ("sgd", "gd") and s.momentum == 0
        and s.schedule in ("constant", "warmup_constant") and n % s.batch(n) == 0
    )


def _objective_and_batches(ctx: EmpiricalContext) -> tuple[BatchObjective, list[np.ndarray]]:
    s = ctx.settings
    batches = epoch_batches(len(ctx.x_train), s.batch(len(ctx.x_train)), s.seed)
    return BatchObjective(ctx.module, s.loss, s.weight_decay), batches


def batch_gradient_hook(module: nn.Module, x_train: Any, y_train: Any, settings: TrainSettings) -> Hook:
    """Records G(theta_t) on the cell's fixed seeded partition at every measured step."""
    n = len(x_train)
    objective = BatchObjective(module, settings.loss, settings.weight_decay)
    batches = epoch_batches(n, settings.batch(n), settings.seed)

    def hook(step: int, module: nn.Module) -> dict[str, float]:
        theta = objective.flat()
        full, noise = gradient_statistics(objective, theta, x_train, y_train)
        return {"batch_gradient_norm": batch_gradient_norm_of(objective, theta, x_train, y_train, batches),
                "full_gradient_norm": full, "gradient_noise": noise}

    return hook


def _gradient_measurement(ctx: EmpiricalContext, name: str) -> Measurement:
    """The hook's final value; the curve against the gradient-flow time t = lr * step
    (``flow_time``), so that cells at different learning rates compare at equal t."""
    values = ctx.run.measurements.get(name)
    if values is None or ctx.run.diverged:
        return Measurement(name, None)
    time_ = np.asarray(ctx.run.steps, dtype=float) * ctx.settings.effective_lr(len(ctx.x_train))
    return Measurement(name, float(values[-1]), Curve(time_, np.asarray(values, dtype=float), x_label="flow_time"))


def batch_gradient_norm(ctx: EmpiricalContext) -> Measurement:
    """G(theta_T) = (1/m) sum_k ||grad L_k(theta_T)||^2 on the cell's fixed seeded partition."""
    return _gradient_measurement(ctx, "batch_gradient_norm")


def full_gradient_norm(ctx: EmpiricalContext) -> Measurement:
    """||grad L(theta_T)||^2 (GD's implicit regularizer, Barrett & De 2021)."""
    return _gradient_measurement(ctx, "full_gradient_norm")


def gradient_noise(ctx: EmpiricalContext) -> Measurement:
    """V(theta_T) = (1/n) sum_i ||grad L_i - grad L||^2, the noise term of SGD's regularizer."""
    return _gradient_measurement(ctx, "gradient_noise")


def batch_gradient_norm_init(ctx: EmpiricalContext) -> Measurement:
    """G(theta_0) on the same partition (the reference G decreases from)."""
    s = ctx.settings
    objective = BatchObjective(ctx.module0, s.loss, s.weight_decay)
    batches = epoch_batches(len(ctx.x_train), s.batch(len(ctx.x_train)), s.seed)
    return Measurement("batch_gradient_norm_init", batch_gradient_norm_of(objective, objective.flat(), ctx.x_train, ctx.y_train, batches))


def _epoch_test(ctx: EmpiricalContext) -> dict[str, float] | None:
    def compute() -> dict[str, float] | None:
        if not _sgd_applicable(ctx):
            return None
        objective, batches = _objective_and_batches(ctx)
        lr = ctx.settings.effective_lr(len(ctx.x_train))
        return sgd_epoch_test(objective, objective.flat(), ctx.x_train, ctx.y_train, batches, lr, seed=ctx.settings.seed)

    return ctx.cached("implicit_regularization/sgd_epoch_test", compute)


def sgd_epoch_error_flow(ctx: EmpiricalContext) -> Measurement:
    result = _epoch_test(ctx)
    return Measurement("sgd_epoch_error_flow", None if result is None else result["error_flow"])


def sgd_epoch_error_modified(ctx: EmpiricalContext) -> Measurement:
    result = _epoch_test(ctx)
    return Measurement("sgd_epoch_error_modified", None if result is None else result["error_modified"])


def sgd_epoch_mc_error(ctx: EmpiricalContext) -> Measurement:
    result = _epoch_test(ctx)
    return Measurement("sgd_epoch_mc_error", None if result is None else result["mc_error"])
