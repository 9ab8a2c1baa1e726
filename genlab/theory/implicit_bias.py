"""Implicit bias of gradient descent (mirrors genlab.empirical.implicit_bias): which of the many
zero-loss solutions the optimizer reaches, predicted in closed form or by a convex program.

- Least squares (linear model ``f = <beta, x>``, and any model linear in its parameters): GD
  from ``beta_0`` stays in ``beta_0 + rowspace(X)`` and converges to the interpolant closest to
  ``beta_0``: ``beta_0 + X^+ (y - X beta_0)`` (the minimum-norm interpolant from zero; the least
  squares solution closest to ``beta_0`` when ``n >= d``). For the output-scaled (centered) model
  the init is ``beta_0 = 0``.
- Diagonal linear network ``beta = u*u - v*v`` with ``u_0 = v_0 = alpha 1`` (Woodworth,
  Gunasekar, Lee, Moroshko, Savarese, Golan, Soudry & Srebro 2020, COLT, Theorem 1 with D = 2
  and their parametrization ``w_+^2 - w_-^2``, ``w_+(0) = w_-(0) = alpha 1``): gradient flow on
  the square loss, if it interpolates, reaches
      argmin Q_alpha(beta)  s.t.  X beta = y,
      Q_alpha(beta) = sum_i alpha^2 q(beta_i / alpha^2),  q(z) = 2 - sqrt(4 + z^2) + z arcsinh(z / 2).
  Since q'(z) = arcsinh(z / 2), the KKT conditions read ``beta = 2 alpha^2 sinh(X^T nu)``
  (the same form gradient flow produces: ``u = alpha e^{-2 s}``, ``v = alpha e^{2 s}`` with
  ``s = X^T int r``), and ``nu`` minimises the strictly convex n-dimensional dual
      D(nu) = 2 alpha^2 sum_i cosh((X^T nu)_i) - <y, nu>,
  whose gradient is ``X beta(nu) - y``, minimised by damped Newton
  (genlab.linear.hypentropy_solution). As alpha -> inf, Q_alpha ~ ||beta||^2 / (4 alpha^2): min-l2;
  as alpha -> 0, Q_alpha ~ log(1/alpha^2) ||beta||_1: min-l1 (approached slowly, ~1/log(1/alpha)).
- Logistic loss on linearly separable data (Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018,
  JMLR, Theorem 3): ``||w(t)|| -> inf`` and ``w(t)/||w(t)||`` converges to the hard-margin SVM
  direction ``w_svm = argmin ||w|| s.t. y_i <w, x_i> >= 1`` (no bias, as the model has none),
  at the slow rate ``O(1 / log t)``; the normalised margin ``min_i y_i <w, x_i> / ||w||``
  converges to ``1 / ||w_svm||`` (genlab.linear.max_margin_direction solves its dual QP). MSE
  on +-1 targets instead reaches the least-squares / min-norm solution of the first bullet,
  whose direction is in general not the SVM's; the squared hinge has zero loss at finite norm,
  so GD stops at a point that depends on the path (no prediction).

Where the cell predictions hold (each quantity is None outside; the predicates
:func:`min_norm_applies`, :func:`q_alpha_applies` and :func:`max_margin_applies` decide):

- Closest interpolant (linear model, MSE, no weight decay: weight decay makes the limit the
  ridge solution). An invariance argument: if every update is a combination, with scalar
  coefficients, of gradients of the (mini-batch) objective, the iterates stay in
  ``beta_0 + rowspace(X)`` (each per-sample gradient of a linear least-squares loss is a
  multiple of ``x_i``), where the only least-squares solution is the closest interpolant above.
  That covers GD and SGD with any batch, scalar schedule and heavy-ball momentum; SAM and ASAM
  (the descent step is the gradient at the ascent point, again ``X_B^T r``: ASAM's elementwise
  ``T_w`` shapes the ascent, not the descent direction); LARS on this one-tensor model (its
  trust ratio is one scalar per tensor); Entropy-SGD without thermal noise (its SGLD iterates,
  their average and the outer step all stay in the span). Not Adam or LAMB: coordinate-wise
  preconditioning leaves the span and their limit depends on the path (Gunasekar, Lee, Soudry &
  Srebro 2018, ICML, "Characterizing implicit bias in terms of optimization geometry"); not
  Entropy-SGD with noise > 0 (isotropic Langevin noise random-walks out of the span, where the
  loss is flat and nothing pulls it back). The run must also settle at that point: either the
  update vanishes there (full-batch gradients at a least-squares solution; mini-batch gradients
  only if ``X beta = y`` is feasible) or the step size decays to 0 (schedule "cosine" or
  "warmup_cosine"). SAM's normalised ascent (rho > 0) and LARS's trust ratio ``||w|| / ||g||``
  keep the step from vanishing at the minimum, so at a constant step they end in an oscillation
  of size ~ lr (for SAM a 2-cycle across the valley: Bartlett, Long & Bousquet 2023, JMLR) and
  are predicted only with a decaying schedule. The step size itself does not enter: a run that
  converges reaches the same point at any step (a divergent run has no measurement).
- Q_alpha: the theorem is about gradient FLOW from ``u_0 = v_0 = alpha 1`` (the DiagonalLinear
  init; not the output-scaled net) reaching an interpolant, so: ``X beta = y`` feasible,
  full-batch GD (or SGD whose batch is all n points), no momentum, no weight decay, any
  schedule (a time change of the flow). Mini-batch noise changes the limit (Pesme,
  Pillaud-Vivien & Flammarion 2021, NeurIPS, "Implicit bias of SGD for diagonal linear
  networks"), so do large steps (Even, Pesme, Gunasekar & Flammarion 2023, NeurIPS, "(S)GD over
  diagonal linear networks": a GD step multiplies the flow's invariant ``u_i v_i = alpha^2`` by
  ``1 - 4 lr^2 g_i^2``) and momentum (Papazov, Pesme & Flammarion 2024, AISTATS); preconditioned
  or sharpness-aware methods have no such result. The prediction is the lr -> 0 limit; we
  require that the predicted point be linearly stable for GD, ``lr * S < 2`` at the peak lr, with
  S the sharpness there (:func:`diag_sharpness`). That is necessary, not sufficient: the O(lr)
  shift of the limit is not modelled (measured on n = 15, d = 40, alpha = 0.3: GD ends 3% from
  the prediction at lr S = 1 and 43% at lr S = 3, where it settles at a flatter interpolant).
- Max-margin direction: linear model, logistic loss (exponential tail; not the squared hinge
  or the MSE), +-1 labels separable through the origin, no weight decay, GD or SGD at a constant
  step after any warm-up (the result is a t -> inf limit of steps whose sum diverges; a schedule
  that decays to 0 stops the clock at a finite flow time). Full-batch GD: any constant step
  (Soudry et al. 2018 for lr below 2 / smoothness; Wu, Braverman & Lee 2023, NeurIPS, "Implicit
  bias of gradient descent for logistic regression at the edge of stability", for any).
  Mini-batch SGD (Nacson, Srebro & Soudry 2019, AISTATS, "Stochastic gradient descent on
  separable data: exact convergence with a fixed learning rate") and heavy-ball momentum (Wang,
  Meng, Zhang, Sun, Chen, Ma & Liu 2022, NeurIPS, "Does momentum change the implicit
  regularization on separable data?") are proved for a small enough fixed step; our sufficient
  reading is that the momentum-free step of the same flow speed, ``lr / (1 - momentum)``, be a
  descent step for every batch: ``lr c^2 / (1 - momentum) * smoothness < 2``, with ``c`` the
  weight multiplier of the parametrization and smoothness ``max_i ||x_i||^2 / 4`` (mini-batch;
  logistic'' <= 1/4) or ``lambda_max(X^T X / n) / 4`` (full batch). Not Adam or LAMB (Adam
  reaches the l2 max margin only once its eps dominates sqrt(v), which a run does not reach; its
  sign-like phase favours another geometry, Gunasekar et al. 2018), LARS (normalised steps),
  SAM / ASAM or Entropy-SGD (no such result). The MSE on +-1 targets is the closest-interpolant
  case.

The solvers and the statistics of a linear predictor are genlab.linear's; the closed forms are
sympy expressions (``expression``, ``latex``), as in genlab.theory.landscape. SGD's modified loss
on mini-batch least squares is genlab.theory.implicit_regularization's.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from genlab.linear import (
    cosine,
    diag_sharpness,
    hypentropy_expressions,
    hypentropy_solution,
    interpolable,
    l1_norm,
    l2_norm,
    margin_of,
    max_margin_direction,
    mean_squared_error,
    min_norm_solution,
    planted_support_recovery,
    separable,
    sign_error,
)
from genlab.quantities import Prediction
from genlab.theory._context import TheoryContext

#: Schedules whose learning rate decays to 0 by the last step (genlab.empirical._train).
DECAYING_SCHEDULES = ("cosine", "warmup_cosine")


# ---------------------------------------------------------------------------------------------
# Closed forms (sympy).


@functools.lru_cache(maxsize=1)
def _expressions() -> dict[str, Any]:
    import sympy as sp

    hypentropy = hypentropy_expressions()
    n, d = sp.symbols("n d", positive=True, integer=True)
    x = sp.MatrixSymbol("X", n, d)
    y = sp.MatrixSymbol("y", n, 1)
    theta0 = sp.MatrixSymbol("theta_0", d, 1)
    return {
        **hypentropy,
        "symbols": {**hypentropy["symbols"], "X": x, "y": y, "theta_0": theta0},
        # full row rank X (n <= d): X^+ = X^T (X X^T)^{-1}
        "min_norm": theta0 + x.T * (x * x.T).inverse() * (y - x * theta0),
    }


_NAMES = ("hypentropy", "q_alpha", "q_alpha_gradient", "kkt_beta", "min_norm")


def expression(name: str) -> Any:
    """The sympy expression ``name``: "hypentropy" (q(z)), "q_alpha" (one coordinate of
    Q_alpha in beta and alpha), "q_alpha_gradient" (dQ_alpha/dbeta_i), "kkt_beta" (beta_i as a
    function of z = (X^T nu)_i) or "min_norm" (theta_0 + X^T (X X^T)^{-1} (y - X theta_0))."""
    if name not in _NAMES:
        raise ValueError(f"name must be one of {', '.join(map(repr, _NAMES))}; got {name!r}")
    return _expressions()[name]


def latex(name: str) -> str:
    """The closed form ``name`` as LaTeX (see :func:`expression`)."""
    import sympy as sp

    return sp.latex(expression(name))


# ---------------------------------------------------------------------------------------------
# The model's implicit-bias prediction in a study cell.


def model_kind(spec: Any) -> str | None:
    """"linear" (fc, depth 0, identity, no bias, one output), "diag" (diag_linear) or None."""
    if spec.kind == "diag_linear":
        return "diag"
    if spec.kind == "fc" and spec.depth == 0 and spec.activation == "identity" and spec.b_std is None and spec.out_dim == 1:
        return "linear"
    return None


def _initial_beta(ctx: TheoryContext) -> np.ndarray:
    """beta_0 of the linear model: 0 when centered, else rebuilt from the cell's seed."""
    if ctx.centered:
        return np.zeros(ctx.x_train.shape[1])

    def compute() -> np.ndarray:
        import torch

        from genlab.settings import torch_dtype

        module = ctx.spec.to_torch(ctx.width, input_shape=tuple(ctx.x_train.shape[1:]), seed=ctx.settings.seed,
                                   dtype=torch_dtype(ctx.settings.dtype))
        with torch.no_grad():
            eye = torch.eye(ctx.x_train.shape[1], dtype=torch_dtype(ctx.settings.dtype))
            return module(eye)[:, 0].double().numpy()

    return ctx.cached("implicit_bias/beta0", compute)


#: Optimizers whose update is a combination, with scalar coefficients, of gradients of the
#: objective (see the module docstring); Entropy-SGD only without thermal noise.
_GRADIENT_SPAN = ("gd", "sgd", "sam", "asam", "lars", "entropy_sgd")


def _weight_multiplier(ctx: TheoryContext) -> float:
    """c of the linear model ``f = c <W, x>`` (genlab.models' layer_scales for its one layer):
    a step lr on W is a step lr c^2 on beta = c W."""
    from genlab.models._torch import layer_scales

    d = ctx.x_train.shape[1]
    return layer_scales(ctx.spec.parametrization, "input", fan_in=d, fan_out=1, width=ctx.width,
                        w_std=ctx.spec.w_std, b_std=ctx.spec.b_std)[0]


def min_norm_applies(ctx: TheoryContext) -> bool:
    """Whether the cell's limit is the closest interpolant ``beta_0 + X^+ (y - X beta_0)``.

    Linear model, MSE, no weight decay; an optimizer whose iterates stay in ``beta_0 +
    rowspace(X)`` (GD, SGD with any batch and momentum, SAM, ASAM, LARS, Entropy-SGD with
    ``entropy_sgd_noise = 0``; not Adam, LAMB or noisy Entropy-SGD: Gunasekar et al. 2018);
    and a run that settles there: a schedule decaying to 0, or else an update that vanishes at
    that point (not SAM with rho > 0 or LARS, whose steps keep length ~ lr; mini-batches only
    when ``X beta = y`` is feasible). Any initialisation and step size. See the module docstring.
    """
    s, n = ctx.settings, len(ctx.x_train)
    if model_kind(ctx.spec) != "linear" or s.loss != "mse" or s.weight_decay != 0:
        return False
    if s.optimizer not in _GRADIENT_SPAN or (s.optimizer == "entropy_sgd" and s.entropy_sgd_noise > 0):
        return False
    if s.schedule in DECAYING_SCHEDULES:
        return True
    if s.optimizer == "lars" or (s.optimizer in ("sam", "asam") and s.sam_rho > 0):
        return False
    return s.batch(n) == n or ctx.cached("implicit_bias/interpolable", lambda: interpolable(ctx.x_train, ctx.y_train))


def _q_alpha_solution(ctx: TheoryContext) -> np.ndarray:
    return ctx.cached("implicit_bias/q_alpha", lambda: hypentropy_solution(ctx.x_train, ctx.y_train, ctx.spec.w_std))


def q_alpha_applies(ctx: TheoryContext) -> bool:
    """Whether the cell's limit is argmin Q_alpha s.t. X beta = y (Woodworth et al. 2020).

    Diagonal net from ``u = v = alpha = w_std`` (not output-scaled), MSE, ``X beta = y``
    feasible; full-batch GD (or SGD with batch >= n), no momentum, no weight decay, any schedule
    (gradient flow; mini-batches: Pesme et al. 2021; momentum: Papazov et al. 2024); peak step
    ``lr * diag_sharpness < 2`` at the predicted point (stability there, a necessary condition of
    the small-step limit: Even et al. 2023). See the module docstring.
    """
    s, n = ctx.settings, len(ctx.x_train)
    if model_kind(ctx.spec) != "diag" or ctx.centered or s.loss != "mse":
        return False
    if s.optimizer not in ("gd", "sgd") or s.batch(n) != n or s.momentum != 0 or s.weight_decay != 0:
        return False
    if not ctx.cached("implicit_bias/interpolable", lambda: interpolable(ctx.x_train, ctx.y_train)):
        return False
    return s.effective_lr(n) * diag_sharpness(ctx.x_train, _q_alpha_solution(ctx), ctx.spec.w_std) < 2


def _separable(ctx: TheoryContext) -> bool:
    return ctx.cached("implicit_bias/separable", lambda: separable(ctx.x_train, ctx.y_train))


def max_margin_applies(ctx: TheoryContext) -> bool:
    """Whether the cell's direction tends to the hard-margin SVM's (Soudry et al. 2018).

    Linear model, one +-1 output, logistic loss, data separable through the origin, no weight
    decay, GD or SGD at a constant step after warm-up ("constant", "warmup_constant"). Full-batch
    GD without momentum: any step (Wu et al. 2023). Mini-batches (Nacson et al. 2019) or
    heavy-ball momentum (Wang et al. 2022): ``lr c^2 / (1 - momentum) * smoothness < 2``
    (module docstring). Not Adam, LAMB, LARS, SAM, ASAM or Entropy-SGD.
    """
    s, x, n = ctx.settings, ctx.x_train, len(ctx.x_train)
    if model_kind(ctx.spec) != "linear" or ctx.kind != "classification" or ctx.y_train.shape[1] != 1 or s.loss != "logistic":
        return False
    if s.optimizer not in ("gd", "sgd") or s.weight_decay != 0 or s.schedule in DECAYING_SCHEDULES or not _separable(ctx):
        return False
    full_batch = s.batch(n) == n
    if full_batch and s.momentum == 0:
        return True
    curvature = float(np.linalg.eigvalsh(x.T @ x / n)[-1] if full_batch else np.max(np.sum(x * x, axis=1)))
    return s.effective_lr(n) * _weight_multiplier(ctx) ** 2 / (1 - s.momentum) * curvature / 4 < 2


def _predicted_solution(ctx: TheoryContext) -> np.ndarray | None:
    """The predicted limit of the trained linear predictor under the MSE: the closest
    interpolant from beta_0 (:func:`min_norm_applies`) or the Q_alpha solution
    (:func:`q_alpha_applies`, alpha = w_std); None elsewhere."""
    if min_norm_applies(ctx):
        return ctx.cached("implicit_bias/solution", lambda: min_norm_solution(ctx.x_train, ctx.y_train, _initial_beta(ctx)))
    if q_alpha_applies(ctx):
        return _q_alpha_solution(ctx)
    return None


def _predicted_direction(ctx: TheoryContext) -> np.ndarray | None:
    """The predicted direction of a linear classifier (one +-1 output): the SVM direction for
    the logistic loss where :func:`max_margin_applies`, the closest interpolant / least-squares
    solution for the MSE where :func:`min_norm_applies`; None otherwise."""
    if model_kind(ctx.spec) != "linear" or ctx.kind != "classification" or ctx.y_train.shape[1] != 1:
        return None
    if ctx.settings.loss == "logistic":
        return _svm(ctx) if max_margin_applies(ctx) else None
    if ctx.settings.loss == "mse":
        return _predicted_solution(ctx)
    return None


def _svm(ctx: TheoryContext) -> np.ndarray:
    return ctx.cached("implicit_bias/svm", lambda: max_margin_direction(ctx.x_train, ctx.y_train))


# ---------------------------------------------------------------------------------------------
# Quantities (names mirror genlab.empirical.implicit_bias). The solution quantities hold where
# min_norm_applies (linear model) or q_alpha_applies (diagonal net); the direction quantities
# where max_margin_applies (logistic) or min_norm_applies (MSE); None elsewhere.


def solution_distance(ctx: TheoryContext) -> Prediction:
    """||beta_T - beta_pred|| / ||beta_pred||: 0 where a limit is predicted (linear model: an
    optimizer staying in beta_0 + rowspace(X) that settles, no weight decay; diagonal net:
    full-batch GD, no momentum or weight decay, stable step; see :func:`min_norm_applies`,
    :func:`q_alpha_applies`)."""
    return Prediction("solution_distance", None if _predicted_solution(ctx) is None else 0.0)


def solution_l1(ctx: TheoryContext) -> Prediction:
    """||beta_pred||_1, under the assumptions of :func:`solution_distance`."""
    beta = _predicted_solution(ctx)
    return Prediction("solution_l1", None if beta is None else l1_norm(beta))


def solution_l2(ctx: TheoryContext) -> Prediction:
    """||beta_pred||_2, under the assumptions of :func:`solution_distance`."""
    beta = _predicted_solution(ctx)
    return Prediction("solution_l2", None if beta is None else l2_norm(beta))


def support_recovery(ctx: TheoryContext) -> Prediction:
    """Fraction of the planted support among the largest |beta_pred,i|, under the assumptions
    of :func:`solution_distance`, when the clean test set determines beta*."""
    beta = _predicted_solution(ctx)
    return Prediction("support_recovery", None if beta is None else planted_support_recovery(beta, ctx.x_test, ctx.y_test))


def solution_test_mse(ctx: TheoryContext) -> Prediction:
    """Test MSE of the predicted linear predictor, mean of (f - y)^2, under the assumptions of
    :func:`solution_distance`."""
    beta = _predicted_solution(ctx)
    return Prediction("solution_test_mse", None if beta is None else mean_squared_error(beta, ctx.x_test, ctx.y_test))


def margin_cosine(ctx: TheoryContext) -> Prediction:
    """cos(beta_T, w_svm): 1 for the logistic loss as t -> inf (GD / SGD at a constant step on
    separable data, :func:`max_margin_applies`), cos(beta_pred, w_svm) for the MSE (closest
    interpolant, :func:`min_norm_applies`; separable data only, as w_svm must exist)."""
    direction = _predicted_direction(ctx)
    if direction is None or not _separable(ctx):
        return Prediction("margin_cosine", None)
    return Prediction("margin_cosine", cosine(direction, _svm(ctx)))


def normalized_margin(ctx: TheoryContext) -> Prediction:
    """min_i y_i <beta, x_i> / ||beta|| of the predicted direction (1/||w_svm|| for logistic),
    under the assumptions of :func:`margin_cosine`."""
    direction = _predicted_direction(ctx)
    value = None if direction is None else margin_of(direction, ctx.x_train, ctx.y_train)
    return Prediction("normalized_margin", value)


def direction_test_error(ctx: TheoryContext) -> Prediction:
    """Misclassification rate of sign(<beta_pred, x>) on the test set, under the assumptions of
    :func:`margin_cosine`."""
    direction = _predicted_direction(ctx)
    return Prediction("direction_test_error", None if direction is None else sign_error(direction, ctx.x_test, ctx.y_test))
