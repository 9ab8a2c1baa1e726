"""Generalization measurements: the gap, measured learning-curve points, and the norm- and
flatness-based measures of a trained network (mirrors genlab.theory.generalization).

- ``generalization_gap``: test loss - train loss at the end of training, both the unscaled
  data loss of genlab.empirical._train (Jiang et al. 2020, "Fantastic generalization measures
  and where to find them", use the same gap as the target their measures are ranked against).
- ``learning_curve_mse``: test MSE of ridgeless regression with the spec's analytic NTK on this
  cell's draw of n_train samples: one draw of the average the spectral theory predicts
  (average cells over ``task.seed`` for the learning curve).

Measures of trained fully-connected networks (genlab.models.SpecNetwork of kind "fc"; None for
conv nets, for an output-scaled network alpha (f - f0), and where they are undefined). Layers
are the effective matrices ``A_l = c_w W_l`` (the multiplier times the trained weight, so that
every parametrization gives the same function-space matrix), l = 1..L (L = depth + 1, the
readout last); biases are left out of the norms, as in the bounds' statements (bias-free nets).

- ``spectral_margin_bound``: Bartlett, Foster & Telgarsky 2017 (Theorem 1.1), the leading term
  ``R_A ||X||_F / (gamma n)`` without constants and log factors, with the spectral complexity
  ``R_A = (prod_l rho_l ||A_l||_2) (sum_l ||A_l^T - M_l^T||_{2,1}^{2/3} / ||A_l||_2^{2/3})^{3/2}``,
  reference matrices M_l the weights at init, rho_l the Lipschitz constant of the activation
  after layer l (ReLU, identity 1; erf 2/sqrt(pi); GELU 1.129), ``||B||_{2,1}`` the sum of the
  column l2 norms, and gamma the margin ``f_y(x) - max_{j != y} f_j(x)`` (``y f(x)`` for one
  output) at its 10th percentile over the training set (Jiang et al. 2020's robust margin).
  Classification only; None when that margin is <= 0.
- ``path_norm``: the l2 path-norm of Neyshabur, Tomioka & Srebro 2015,
  ``sqrt(sum over input-output paths of prod_l A_l[path]^2)``, computed as
  ``sqrt(1^T |A_L|^2 ... |A_1|^2 1)`` (squares entry-wise); Jiang et al. 2020's "path.norm"
  is its square (the same ranking). A capacity measure of positively homogeneous (ReLU) nets.
- ``frobenius_distance``: distance to initialization ``sqrt(sum_l ||A_l - A_l^0||_F^2)``
  (Jiang et al. 2020, "dist.init"; Nagarajan & Kolter 2019).
- ``pacbayes_flatness``: ``1 / sigma*^2`` with sigma* the largest standard deviation of an
  isotropic Gaussian perturbation of ALL trained parameters (the stored ones, biases included)
  whose expected training error exceeds the trained network's by at most 0.1 (Jiang et al.
  2020, "pacbayes.flatness": their deviation threshold 0.1, bisection), found by bisection over
  the grid sigma_j = 2^(-j/8), j = 0..106 (1 down to 1e-4), the expectation a Monte Carlo mean over 8 draws.
  Classification only.
- ``pacbayes_bound``: the Dziugaite & Roy 2017 (McAllester / Langford-Seeger) bound on the
  expected test error of the Gaussian posterior Q = N(theta, sigma*^2 I) with prior
  P = N(theta_0, sigma*^2 I): ``kl^{-1}(e_Q, (KL(Q||P) + ln(2 sqrt(n)/delta) + ln 107) / n)``,
  ``KL = ||theta - theta_0||^2 / (2 sigma*^2)``, delta = 0.05, ln 107 the union bound over the
  sigma grid, e_Q the Monte Carlo training error of Q (32 draws; its own sampling error is not
  bounded, unlike Dziugaite & Roy's Chernoff step). kl^{-1}(q, c) = max{p : kl(q||p) <= c}.
  With the posterior not optimized (as in Jiang et al.) the bound is usually vacuous (near 1).
- ``pacbayes_kl``: its complexity term ``KL(Q||P) = ||theta - theta_0||^2 / (2 sigma*^2)``, the
  part that varies across a sweep (Jiang et al. 2020's "pacbayes.init" is
  ``||theta - theta_0||^2 / (4 sigma^2) + log(n / sigma) + 10``, ranked the same way up to the log).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from genlab.empirical._context import EmpiricalContext
from genlab.quantities import Measurement

#: Lipschitz constants of the activations: max |sigma'|. erf' = 2 exp(-x^2) / sqrt(pi) peaks at 0.
#: GELU(x) = x Phi(x) has GELU' = Phi(x) + x phi(x) and GELU'' = phi(x) (2 - x^2), so its
#: derivative peaks at x = sqrt(2): Phi(sqrt 2) + sqrt(2) phi(sqrt 2) = (1 + erf(1)) / 2 +
#: exp(-1) / sqrt(pi) ~ 1.1289 (its minimum, -0.1289 at -sqrt(2), is smaller in magnitude).
LIPSCHITZ = {"relu": 1.0, "identity": 1.0, "erf": 2.0 / math.sqrt(math.pi),
             "gelu": 0.5 * (1.0 + math.erf(1.0)) + math.exp(-1.0) / math.sqrt(math.pi)}
MARGIN_QUANTILE = 0.1
PACBAYES_DEVIATION = 0.1
PACBAYES_DELTA = 0.05
SIGMA_GRID = 2.0 ** (-np.arange(107) / 8.0)
SEARCH_DRAWS = 8
BOUND_DRAWS = 32


def generalization_gap(ctx: EmpiricalContext) -> Measurement:
    if ctx.run.diverged or ctx.run.test_loss is None:
        return Measurement("generalization_gap", None)
    return Measurement("generalization_gap", float(ctx.run.test_loss[-1] - ctx.run.train_loss[-1]))


def learning_curve_mse(ctx: EmpiricalContext) -> Measurement:
    from genlab.kernels import analytic_kernel, kernel_regression
    from genlab.models import OutputScaled

    net = ctx.module0.module if isinstance(ctx.module0, OutputScaled) else ctx.module0
    if net.spec.parametrization == "mup":
        return Measurement("learning_curve_mse", None)
    k_train = analytic_kernel(net.spec, ctx.x_train, get="ntk", width=net.width)
    k_test = analytic_kernel(net.spec, ctx.x_test, ctx.x_train, get="ntk", width=net.width)
    predictions = kernel_regression(k_train, ctx.y_train, k_test).reshape(ctx.y_test.shape)
    return Measurement("learning_curve_mse", float(np.mean(np.sum((predictions - ctx.y_test) ** 2, axis=1))))


# ----------------------------------------------------------------------------- the measures


def effective_layers(module: nn.Module) -> list[np.ndarray] | None:
    """The matrices ``A_l = c_w W_l`` (float64, shape (out, in)) of an fc SpecNetwork, input
    layer first; None for other modules (conv kinds, output-scaled networks)."""
    from genlab.models import SpecNetwork

    if not isinstance(module, SpecNetwork) or module.spec.kind != "fc":
        return None
    layers = list(module.hidden) + [module.readout]
    return [layer.weight.detach().cpu().double().numpy() * layer.weight_multiplier for layer in layers]


def spectral_complexity(layers: list[np.ndarray], reference: list[np.ndarray], lipschitz: list[float]) -> float:
    """Bartlett et al. 2017's ``R_A`` (see the module docstring); ``lipschitz`` per layer."""
    spectral = [float(torch.linalg.matrix_norm(torch.from_numpy(a), ord=2)) for a in layers]
    two_one = [float(np.linalg.norm(a - m, axis=1).sum()) for a, m in zip(layers, reference, strict=True)]
    product = float(np.prod([rho * s for rho, s in zip(lipschitz, spectral, strict=True)]))
    return product * sum((t / s) ** (2.0 / 3.0) for t, s in zip(two_one, spectral, strict=True)) ** 1.5


def path_norm_of(layers: list[np.ndarray]) -> float:
    """``sqrt(1^T |A_L|^2 ... |A_1|^2 1)``: the l2 path-norm (module docstring)."""
    v = np.ones(layers[0].shape[1])
    for a in layers:
        v = (a**2) @ v
    return float(math.sqrt(v.sum()))


def margins(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``f_y - max_{j != y} f_j`` per sample, labels the argmax of the targets; ``y f`` for one
    output with targets in {-1, +1}."""
    if outputs.shape[1] == 1:
        return (np.sign(targets) * outputs)[:, 0]
    labels = np.argmax(targets, axis=1)
    rows = np.arange(len(labels))
    true = outputs[rows, labels]
    others = outputs.copy()
    others[rows, labels] = -np.inf
    return true - others.max(axis=1)


def _measurable(ctx: EmpiricalContext) -> bool:
    return not ctx.run.diverged and effective_layers(ctx.module) is not None


def spectral_margin_bound(ctx: EmpiricalContext) -> Measurement:
    if not _measurable(ctx) or ctx.kind != "classification":
        return Measurement("spectral_margin_bound", None)
    layers, reference = effective_layers(ctx.module), effective_layers(ctx.module0)
    rho = LIPSCHITZ[ctx.module.spec.activation]
    lipschitz = [rho] * (len(layers) - 1) + [1.0]
    gamma = float(np.quantile(margins(ctx.outputs("end", ctx.x_train, "train"), ctx.y_train), MARGIN_QUANTILE))
    if gamma <= 0:
        return Measurement("spectral_margin_bound", None)
    x_norm = float(np.linalg.norm(ctx.x_train.reshape(len(ctx.x_train), -1)))
    value = spectral_complexity(layers, reference, lipschitz) * x_norm / (gamma * len(ctx.x_train))
    return Measurement("spectral_margin_bound", value)


def path_norm(ctx: EmpiricalContext) -> Measurement:
    return Measurement("path_norm", path_norm_of(effective_layers(ctx.module)) if _measurable(ctx) else None)


def frobenius_distance(ctx: EmpiricalContext) -> Measurement:
    if not _measurable(ctx):
        return Measurement("frobenius_distance", None)
    pairs = zip(effective_layers(ctx.module), effective_layers(ctx.module0), strict=True)
    return Measurement("frobenius_distance", float(math.sqrt(sum(np.sum((a - b) ** 2) for a, b in pairs))))


def binary_kl(q: float, p: float) -> float:
    """kl(q || p) between Bernoulli(q) and Bernoulli(p), in nats."""
    def term(a: float, b: float) -> float:
        return 0.0 if a == 0 else a * math.log(a / b)

    if p <= 0.0 or p >= 1.0:
        return 0.0 if p == q else math.inf
    return term(q, p) + term(1.0 - q, 1.0 - p)


def kl_inverse(q: float, c: float) -> float:
    """``max{p in [q, 1] : kl(q || p) <= c}`` by bisection (kl is increasing in p >= q)."""
    if not 0.0 <= q <= 1.0 or c < 0:
        raise ValueError(f"kl_inverse needs q in [0, 1] and c >= 0; got q={q!r}, c={c!r}")
    low, high = q, 1.0
    for _ in range(100):
        mid = 0.5 * (low + high)
        if binary_kl(q, mid) > c:
            high = mid
        else:
            low = mid
    return low


def gaussian_kl(mean_q: np.ndarray, mean_p: np.ndarray, sigma_q: float, sigma_p: float) -> float:
    """KL(N(mean_q, sigma_q^2 I) || N(mean_p, sigma_p^2 I)) for k-dimensional means."""
    k = mean_q.size
    ratio = (sigma_q / sigma_p) ** 2
    return 0.5 * (k * ratio + float(np.sum((mean_q - mean_p) ** 2)) / sigma_p**2 - k - k * math.log(ratio))


def _parameters(module: nn.Module) -> list[torch.Tensor]:
    return [p for p in module.parameters() if p.requires_grad]


def _error(module: nn.Module, x: torch.Tensor, targets: np.ndarray) -> float:
    with torch.no_grad():
        outputs = module(x).cpu().double().numpy()
    return float(np.mean(margins(outputs, targets) <= 0))


def perturbed_error(module: nn.Module, x: np.ndarray, targets: np.ndarray, sigma: float, draws: int, seed: int) -> float:
    """Monte Carlo mean training error of ``theta + sigma * N(0, I)`` (the module is restored)."""
    params = _parameters(module)
    saved = [p.detach().clone() for p in params]
    generator = torch.Generator().manual_seed(seed)
    ref = params[0]
    inputs = torch.as_tensor(x).to(ref.device, ref.dtype)
    errors = []
    try:
        for _ in range(draws):
            with torch.no_grad():
                for p, p0 in zip(params, saved, strict=True):
                    noise = torch.randn(p0.shape, generator=generator, dtype=p0.dtype).to(p0.device)
                    p.copy_(p0 + sigma * noise)
            errors.append(_error(module, inputs, targets))
    finally:
        with torch.no_grad():
            for p, p0 in zip(params, saved, strict=True):
                p.copy_(p0)
    return float(np.mean(errors))


def flat_sigma(ctx: EmpiricalContext) -> float:
    """sigma* of ``pacbayes_flatness`` (module docstring); cached on the context."""
    def compute() -> float:
        inputs = torch.as_tensor(ctx.x_train)
        base = _error(ctx.module, inputs.to(next(ctx.module.parameters()).dtype), ctx.y_train)
        ok = lambda j: perturbed_error(  # noqa: E731
            ctx.module, ctx.x_train, ctx.y_train, float(SIGMA_GRID[j]), SEARCH_DRAWS, ctx.settings.seed
        ) <= base + PACBAYES_DEVIATION
        low, high = 0, len(SIGMA_GRID) - 1  # sigma decreases with j: find the smallest ok j
        if ok(low):
            return float(SIGMA_GRID[low])
        if not ok(high):
            return float(SIGMA_GRID[high])
        while high - low > 1:
            mid = (low + high) // 2
            low, high = (low, mid) if ok(mid) else (mid, high)
        return float(SIGMA_GRID[high])

    return ctx.cached("pacbayes/sigma", compute)


def _pacbayes_ready(ctx: EmpiricalContext) -> bool:
    return not ctx.run.diverged and ctx.kind == "classification"


def pacbayes_flatness(ctx: EmpiricalContext) -> Measurement:
    return Measurement("pacbayes_flatness", 1.0 / flat_sigma(ctx) ** 2 if _pacbayes_ready(ctx) else None)


def _pacbayes_kl(ctx: EmpiricalContext) -> float:
    sigma = flat_sigma(ctx)
    theta = np.concatenate([p.detach().cpu().double().numpy().ravel() for p in _parameters(ctx.module)])
    theta0 = np.concatenate([p.detach().cpu().double().numpy().ravel() for p in _parameters(ctx.module0)])
    return gaussian_kl(theta, theta0, sigma, sigma)


def pacbayes_kl(ctx: EmpiricalContext) -> Measurement:
    return Measurement("pacbayes_kl", _pacbayes_kl(ctx) if _pacbayes_ready(ctx) else None)


def pacbayes_bound(ctx: EmpiricalContext) -> Measurement:
    if not _pacbayes_ready(ctx):
        return Measurement("pacbayes_bound", None)
    sigma = flat_sigma(ctx)
    kl = _pacbayes_kl(ctx)
    n = len(ctx.x_train)
    e_q = perturbed_error(ctx.module, ctx.x_train, ctx.y_train, sigma, BOUND_DRAWS, ctx.settings.seed + 1)
    c = (kl + math.log(2.0 * math.sqrt(n) / PACBAYES_DELTA) + math.log(len(SIGMA_GRID))) / n
    return Measurement("pacbayes_bound", kl_inverse(e_q, c))


# --------------------------------------------------------------------- ranking across a sweep


def granulated_kendall_tau(measure: Any, gap: Any, params: Mapping[str, Any]) -> dict[str, float]:
    """Jiang et al. 2020's granulated Kendall coefficient: for each hyperparameter i, the mean
    over groups of cells that share every other hyperparameter of the Kendall tau between the
    measure and the gap within the group (psi_i); ``"overall"`` is the mean of the psi_i (Psi).
    Groups with fewer than 2 finite cells or a constant column are skipped; psi_i is NaN when
    no group of i remains."""
    from scipy.stats import kendalltau

    values = np.asarray(measure, dtype=float)
    gaps = np.asarray(gap, dtype=float)
    columns = {name: np.asarray(v) for name, v in params.items()}
    for name, column in columns.items():
        if column.shape != values.shape or gaps.shape != values.shape:
            raise ValueError(f"params[{name!r}], measure and gap must be 1-D of one length")
    result = {}
    for name in columns:
        others = [c for c in columns if c != name]
        keys = [tuple(columns[o][i] for o in others) for i in range(values.size)]
        taus = []
        for key in dict.fromkeys(keys):
            idx = np.array([i for i, k in enumerate(keys) if k == key])
            idx = idx[np.isfinite(values[idx]) & np.isfinite(gaps[idx])]
            if idx.size < 2 or np.ptp(values[idx]) == 0 or np.ptp(gaps[idx]) == 0:
                continue
            taus.append(float(kendalltau(values[idx], gaps[idx]).statistic))
        result[name] = float(np.mean(taus)) if taus else float("nan")
    finite = [v for v in result.values() if np.isfinite(v)]
    result["overall"] = float(np.mean(finite)) if finite else float("nan")
    return result
