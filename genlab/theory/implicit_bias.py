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
  whose gradient is ``X beta(nu) - y``. We minimise it by damped Newton (exact Hessian
  ``X diag(2 alpha^2 cosh(X^T nu)) X^T``, Cholesky solves from scipy.linalg) until
  ``||X beta - y|| <= tol * ||y||``. As alpha -> inf, Q_alpha ~ ||beta||^2 / (4 alpha^2): min-l2;
  as alpha -> 0, Q_alpha ~ log(1/alpha^2) ||beta||_1: min-l1 (approached slowly, ~1/log(1/alpha)).
- Logistic loss on linearly separable data (Soudry, Hoffer, Nacson, Gunasekar & Srebro 2018,
  JMLR, Theorem 3): ``||w(t)|| -> inf`` and ``w(t)/||w(t)||`` converges to the hard-margin SVM
  direction ``w_svm = argmin ||w|| s.t. y_i <w, x_i> >= 1`` (no bias, as the model has none),
  at the slow rate ``O(1 / log t)``; the normalised margin ``min_i y_i <w, x_i> / ||w||``
  converges to ``1 / ||w_svm||``. ``w_svm`` is solved from its dual QP
  ``max_{a >= 0} sum a - 1/2 ||sum_i a_i y_i x_i||^2`` (L-BFGS-B), then polished exactly on the
  support vectors. MSE on +-1 targets instead reaches the least-squares / min-norm solution of
  the first bullet, whose direction is in general not the SVM's; the squared hinge has zero
  loss at finite norm, so GD stops at a point that depends on the path (no prediction).

- SGD (Smith, Dherin, Barrett & De 2021, ICLR, "On the origin of implicit regularization in
  stochastic gradient descent"): over one epoch of m mini-batches (a fixed partition, visited in
  a uniformly random order), the MEAN SGD iterate follows, to O(m^3 eta^3), gradient flow for
  time m eta on the modified loss
      L_SGD(w) = L(w) + (eta / (4 m)) sum_k ||grad L_k(w)||^2,
  while gradient flow on L itself is off by O(m^2 eta^2). :func:`sgd_modified_flow` solves that
  flow exactly for least squares (a linear ODE: matrix exponential of the augmented system),
  to be compared with the mean over all m! orders of an epoch of SGD
  (genlab.empirical.implicit_bias.sgd_epoch_mean).

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

Closed forms are sympy expressions (``expression``, ``latex``), as in genlab.theory.landscape.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from genlab.quantities import Prediction
from genlab.theory._context import TheoryContext

#: Relative tolerance of the hypentropy dual solve: ||X beta - y|| <= DUAL_TOL * ||y||.
DUAL_TOL = 1e-10

#: ``X beta = y`` counts as feasible when the least-squares residual is below this fraction of
#: ||y||: rounding of pinv is ~1e-15 relative for well-conditioned X, while label noise that
#: rules out interpolation (n > d) leaves a residual of the noise's size.
INTERPOLATION_TOL = 1e-8

#: Schedules whose learning rate decays to 0 by the last step (genlab.empirical._train).
DECAYING_SCHEDULES = ("cosine", "warmup_cosine")


# ---------------------------------------------------------------------------------------------
# Closed forms (sympy).


@functools.lru_cache(maxsize=1)
def _expressions() -> dict[str, Any]:
    import sympy as sp

    z, b = sp.symbols("z beta", real=True)
    alpha_pos = sp.Symbol("alpha", positive=True)
    n, d = sp.symbols("n d", positive=True, integer=True)
    x = sp.MatrixSymbol("X", n, d)
    y = sp.MatrixSymbol("y", n, 1)
    theta0 = sp.MatrixSymbol("theta_0", d, 1)
    q = 2 - sp.sqrt(4 + z**2) + z * sp.asinh(z / 2)
    return {
        "symbols": {"z": z, "alpha": alpha_pos, "beta": b, "X": x, "y": y, "theta_0": theta0},
        "hypentropy": q,
        "q_alpha": alpha_pos**2 * q.subs(z, b / alpha_pos**2),
        "q_alpha_gradient": sp.asinh(b / (2 * alpha_pos**2)),
        "kkt_beta": 2 * alpha_pos**2 * sp.sinh(z),  # z = (X^T nu)_i
        # full row rank X (n <= d): X^+ = X^T (X X^T)^{-1}
        "min_norm": theta0 + x.T * (x * x.T).inverse() * (y - x * theta0),
        # L + (eta / 4) G with G = (1/m) sum_k ||grad L_k||^2, the mean batch-gradient norm
        "sgd_modified_loss": sp.Symbol("L") + sp.Symbol("eta", positive=True) / 4 * sp.Symbol("G", nonnegative=True),
    }


_NAMES = ("hypentropy", "q_alpha", "q_alpha_gradient", "kkt_beta", "min_norm", "sgd_modified_loss")


def expression(name: str) -> Any:
    """The sympy expression ``name``: "hypentropy" (q(z)), "q_alpha" (one coordinate of
    Q_alpha in beta and alpha), "q_alpha_gradient" (dQ_alpha/dbeta_i), "kkt_beta" (beta_i as a
    function of z = (X^T nu)_i), "min_norm" (theta_0 + X^T (X X^T)^{-1} (y - X theta_0)) or
    "sgd_modified_loss" (L + eta G / 4, G the mean squared batch-gradient norm)."""
    if name not in _NAMES:
        raise ValueError(f"name must be one of {', '.join(map(repr, _NAMES))}; got {name!r}")
    return _expressions()[name]


def latex(name: str) -> str:
    """The closed form ``name`` as LaTeX (see :func:`expression`)."""
    import sympy as sp

    return sp.latex(expression(name))


@functools.lru_cache(maxsize=1)
def _q_alpha_numeric() -> Any:
    import sympy as sp

    symbols = _expressions()["symbols"]
    return sp.lambdify((symbols["beta"], symbols["alpha"]), expression("q_alpha"), modules="numpy")


# ---------------------------------------------------------------------------------------------
# Solvers (plain arrays in, plain arrays out).


def _check_xy(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must have shape (n, d) and y n = {y.shape[0]} entries; got {x.shape}")
    return x, y


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite float > 0; got {alpha!r}")
    return float(alpha)


def interpolable(x: Any, y: Any) -> bool:
    """Whether ``X beta = y`` has a solution (least-squares residual <= INTERPOLATION_TOL ||y||)."""
    x, y = _check_xy(x, y)
    scale = max(float(np.linalg.norm(y)), 1e-300)
    return bool(np.linalg.norm(x @ (np.linalg.pinv(x) @ y) - y) <= INTERPOLATION_TOL * scale)


def separable(x: Any, y: Any) -> bool:
    """Whether the +-1 labels ``y`` are linearly separable through the origin: some w has
    y_i <w, x_i> >= 1 for all i (a feasibility LP, scipy.optimize.linprog / HiGHS). False for
    labels other than +-1."""
    from scipy.optimize import linprog

    x, y = _check_xy(x, y)
    if not np.all(np.abs(y) == 1):  # labels are stored exactly as +-1.0
        return False
    feasible = linprog(np.zeros(x.shape[1]), A_ub=-(x * y[:, None]), b_ub=-np.ones(len(y)), bounds=(None, None), method="highs")
    return bool(feasible.status == 0)


def min_norm_solution(x: Any, y: Any, theta0: Any = None) -> np.ndarray:
    """``theta0 + X^+ (y - X theta0)``: where GD on the square loss of a linear model from
    ``theta0`` (default 0) converges (np.linalg.pinv, so also for n >= d or rank-deficient X)."""
    x, y = _check_xy(x, y)
    t0 = np.zeros(x.shape[1]) if theta0 is None else np.asarray(theta0, dtype=np.float64).reshape(-1)
    if t0.shape != (x.shape[1],):
        raise ValueError(f"theta0 must have d = {x.shape[1]} entries; got {t0.shape}")
    return t0 + np.linalg.pinv(x) @ (y - x @ t0)


def q_alpha(beta: Any, alpha: float) -> float:
    """The hypentropy potential Q_alpha(beta) = sum_i alpha^2 q(beta_i / alpha^2)."""
    return float(np.sum(_q_alpha_numeric()(np.asarray(beta, dtype=np.float64), _check_alpha(alpha))))


def hypentropy_solution(x: Any, y: Any, alpha: float, *, tol: float = DUAL_TOL, max_iter: int = 500) -> np.ndarray:
    """argmin Q_alpha(beta) s.t. X beta = y, via the dual (see the module docstring).

    Damped Newton on D(nu) (Cholesky solves with scipy.linalg, Armijo backtracking on D, or on
    the residual once D is flat to rounding), from nu = 0, until ||X beta - y|| <= tol ||y||.
    Raises ValueError if ``X beta = y`` is infeasible or the solve misses ``tol``.
    """
    from scipy.linalg import cho_factor, cho_solve

    x, y = _check_xy(x, y)
    a2 = 2.0 * _check_alpha(alpha) ** 2
    scale = max(float(np.linalg.norm(y)), 1e-300)
    if not interpolable(x, y):
        raise ValueError("y must be interpolable (X beta = y feasible) for the hypentropy problem")

    def dual(nu: np.ndarray) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            return float(a2 * np.sum(np.cosh(x.T @ nu)) - y @ nu)

    nu = np.zeros(x.shape[0])
    value = dual(nu)
    for _ in range(max_iter):
        z = x.T @ nu
        residual = x @ (a2 * np.sinh(z)) - y  # the dual gradient
        res_norm = float(np.linalg.norm(residual))
        if res_norm <= tol * scale:
            return a2 * np.sinh(z)
        hessian = (x * (a2 * np.cosh(z))) @ x.T
        step = -cho_solve(cho_factor(hessian + 1e-300 * np.eye(len(nu))), residual)
        slope = float(residual @ step)
        t = min(1.0, 10.0 / max(float(np.max(np.abs(x.T @ step))), 1e-300))  # cosh grows e-fold per unit
        t_min, trial, trial_value = 1e-12 * t, nu, value
        while t > t_min:
            trial = nu + t * step
            trial_value = dual(trial)
            if np.isfinite(trial_value) and trial_value <= value + 1e-4 * t * slope:
                break
            if np.isfinite(trial_value) and abs(trial_value - value) <= 1e-13 * max(abs(value), 1.0):
                trial_res = float(np.linalg.norm(x @ (a2 * np.sinh(x.T @ trial)) - y))
                if trial_res < res_norm:
                    break
            t *= 0.5
        nu, value = trial, trial_value
    beta = a2 * np.sinh(x.T @ nu)
    raise ValueError(f"hypentropy dual did not converge for alpha={alpha!r}: relative residual {np.linalg.norm(x @ beta - y) / scale:.2e}")


def min_l1_solution(x: Any, y: Any) -> np.ndarray:
    """argmin ||beta||_1 s.t. X beta = y, as the linear program over beta = p - m, p, m >= 0."""
    from scipy.optimize import linprog

    x, y = _check_xy(x, y)
    d = x.shape[1]
    result = linprog(np.ones(2 * d), A_eq=np.hstack([x, -x]), b_eq=y, bounds=(0, None), method="highs")
    if result.status != 0:
        raise ValueError(f"min-l1 linear program failed: {result.message}")
    return result.x[:d] - result.x[d:]


def max_margin_direction(x: Any, y: Any) -> np.ndarray:
    """The hard-margin SVM through the origin: argmin ||w|| s.t. y_i <w, x_i> >= 1.

    Raises ValueError if the data are not linearly separable through the origin.
    """
    from scipy.optimize import minimize

    x, y = _check_xy(x, y)
    if not np.all(np.abs(y) == 1):
        raise ValueError("y must have values in {-1, +1} for the max-margin direction")
    if not separable(x, y):
        raise ValueError("the data are not linearly separable through the origin: no max-margin direction")
    z = x * y[:, None]
    gram = z @ z.T

    def dual(a: np.ndarray) -> tuple[float, np.ndarray]:
        g = gram @ a
        return float(0.5 * a @ g - a.sum()), g - 1.0

    n = len(y)
    result = minimize(dual, np.zeros(n), jac=True, method="L-BFGS-B", bounds=[(0, None)] * n,
                      options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 20000})
    a = result.x
    # Polish: on the support set S the margins are exactly 1: Z_S Z_S^T a_S = 1.
    for threshold in (1e-8, 1e-6, 1e-4):
        support = a > threshold * max(a.max(), 1e-300)
        a_s = np.linalg.lstsq(gram[np.ix_(support, support)], np.ones(support.sum()), rcond=None)[0]
        w = z[support].T @ a_s
        if np.all(a_s > 0) and np.all(z @ w >= 1 - 1e-9):
            return w
    w = z.T @ a
    if np.all(z @ w >= 1 - 1e-6):
        return w
    raise ValueError("max-margin dual did not converge")


def diag_sharpness(x: Any, beta: Any, alpha: float) -> float:
    """Largest eigenvalue of the Hessian of the MSE ``||X (u*u - v*v) - y||^2 / (2n)`` in
    ``(u, v)`` at the interpolant ``beta`` that gradient flow reaches from ``u = v = alpha``.

    The flow keeps ``u_i v_i = alpha^2`` (d(u_i v_i)/dt = 0), so there ``u_i^2 + v_i^2 =
    sqrt(beta_i^2 + 4 alpha^4)``; at zero residual the Hessian is the Gauss-Newton ``J^T J / n``,
    ``J = X [diag(2u), -diag(2v)]``, whose nonzero spectrum is that of
    ``X diag(4 sqrt(beta^2 + 4 alpha^4)) X^T / n``.
    """
    x = np.asarray(x, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64).reshape(-1)
    weights = 4.0 * np.sqrt(beta**2 + 4.0 * _check_alpha(alpha) ** 4)
    return float(np.linalg.eigvalsh((x * weights) @ x.T / x.shape[0])[-1])


def margin_of(w: Any, x: Any, y: Any) -> float:
    """min_i y_i <w, x_i> / ||w||_2 (negative when some point is misclassified)."""
    x, y = _check_xy(x, y)
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(w))
    return float(np.min(y * (x @ w)) / norm) if norm > 0 else 0.0


def cosine(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=np.float64).reshape(-1), np.asarray(b, dtype=np.float64).reshape(-1)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def planted_beta(x_test: Any, y_test: Any) -> np.ndarray | None:
    """The target's linear coefficients, recovered from the clean test set (the tasks' test
    targets are noiseless): least squares, returned only if it fits to 1e-8 and n_test >= d."""
    x, y = _check_xy(x_test, y_test)
    if x.shape[0] < x.shape[1]:
        return None
    beta = np.linalg.lstsq(x, y, rcond=None)[0]
    return beta if np.linalg.norm(x @ beta - y) <= 1e-8 * max(np.linalg.norm(y), 1e-300) else None


def support_fraction(beta: Any, beta_star: Any) -> float:
    """Fraction of supp(beta*) among the k = |supp(beta*)| largest |beta_i|."""
    beta, beta_star = np.abs(np.asarray(beta).reshape(-1)), np.asarray(beta_star).reshape(-1)
    support = np.flatnonzero(np.abs(beta_star) > 1e-9 * np.abs(beta_star).max())
    top = np.argsort(-beta, kind="stable")[: len(support)]
    return float(len(np.intersect1d(top, support)) / len(support))


def batch_quadratics(x: Any, y: Any, batches: Any) -> tuple[np.ndarray, np.ndarray]:
    """Least squares per batch, L_k(w) = ||X_k w - y_k||^2 / (2 B_k): grad L_k = A_k w - c_k
    with A_k = X_k^T X_k / B_k, c_k = X_k^T y_k / B_k; returns (A (m, d, d), c (m, d))."""
    x, y = _check_xy(x, y)
    index = [np.asarray(b, dtype=np.int64) for b in batches]
    if not index or any(len(b) == 0 for b in index):
        raise ValueError("batches must be a non-empty list of non-empty index arrays")
    a = np.stack([x[b].T @ x[b] / len(b) for b in index])
    c = np.stack([x[b].T @ y[b] / len(b) for b in index])
    return a, c


def sgd_modified_flow(x: Any, y: Any, batches: Any, w0: Any, lr: float, *, modified: bool = True) -> np.ndarray:
    """Gradient flow for time ``m * lr`` (one epoch) from ``w0`` on L_SGD (``modified=True``) or
    on L = mean_k L_k, for least squares split into the mini-batches ``batches``.

    grad L_SGD = M w - v with M = A + (lr / 2m) sum_k A_k^2, v = c + (lr / 2m) sum_k A_k c_k
    (A, c the batch means); the flow is exp(t [[-M, v], [0, 0]]) applied to (w0, 1).
    """
    from scipy.linalg import expm

    a, c = batch_quadratics(x, y, batches)
    m, d = c.shape
    w0 = np.asarray(w0, dtype=np.float64).reshape(-1)
    if w0.shape != (d,):
        raise ValueError(f"w0 must have d = {d} entries; got {w0.shape}")
    big_m, v = a.mean(0), c.mean(0)
    if modified:
        big_m = big_m + lr / (2 * m) * np.einsum("kij,kjl->il", a, a)
        v = v + lr / (2 * m) * np.einsum("kij,kj->i", a, c)
    generator = np.zeros((d + 1, d + 1))
    generator[:d, :d], generator[:d, d] = -big_m, v
    return (expm(m * lr * generator) @ np.append(w0, 1.0))[:d]


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

        from genlab.empirical._train import torch_dtype

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
    return Prediction("solution_l1", None if beta is None else float(np.abs(beta).sum()))


def solution_l2(ctx: TheoryContext) -> Prediction:
    """||beta_pred||_2, under the assumptions of :func:`solution_distance`."""
    beta = _predicted_solution(ctx)
    return Prediction("solution_l2", None if beta is None else float(np.linalg.norm(beta)))


def support_recovery(ctx: TheoryContext) -> Prediction:
    """Fraction of the planted support among the largest |beta_pred,i|, under the assumptions
    of :func:`solution_distance`, when the clean test set determines beta*."""
    beta, star = _predicted_solution(ctx), planted_beta(ctx.x_test, ctx.y_test)
    return Prediction("support_recovery", None if beta is None or star is None else support_fraction(beta, star))


def solution_test_mse(ctx: TheoryContext) -> Prediction:
    """Test MSE of the predicted linear predictor, mean of (f - y)^2, under the assumptions of
    :func:`solution_distance`."""
    beta = _predicted_solution(ctx)
    if beta is None:
        return Prediction("solution_test_mse", None)
    return Prediction("solution_test_mse", float(np.mean((ctx.x_test @ beta - ctx.y_test[:, 0]) ** 2)))


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
    if direction is None:
        return Prediction("direction_test_error", None)
    return Prediction("direction_test_error", float(np.mean(np.sign(ctx.x_test @ direction) != np.sign(ctx.y_test[:, 0]))))
