"""Linear predictors ``f(x) = <beta, x>``: the closed-form and convex solutions that implicit-bias
theory names, and the statistics both sides report on a predictor.

- :func:`min_norm_solution`: ``theta_0 + X^+ (y - X theta_0)``, where gradient descent on the
  square loss from ``theta_0`` converges; :func:`min_l1_solution`: argmin ||beta||_1 s.t.
  ``X beta = y`` (a linear program); :func:`interpolable`: whether ``X beta = y`` is feasible.
- :func:`hypentropy_solution`: argmin Q_alpha(beta) s.t. ``X beta = y``, the limit of gradient
  flow on a diagonal linear network from scale alpha (Woodworth et al. 2020), with the potential
  :func:`q_alpha`, its sympy forms (:func:`hypentropy_expressions`) and the network's sharpness
  at that point (:func:`diag_sharpness`).
- :func:`max_margin_direction`: the hard-margin SVM direction through the origin, the limit
  direction of gradient descent on the logistic loss of separable data (Soudry et al. 2018);
  :func:`separable`, :func:`margin_of`, :func:`cosine`.
- :func:`batch_quadratics`: the per-batch quadratics ``A_k w - c_k`` of mini-batch least squares.
- Statistics: :func:`l1_norm`, :func:`l2_norm`, :func:`planted_beta`, :func:`support_fraction`,
  :func:`planted_support_recovery`, :func:`mean_squared_error`, :func:`sign_error`.

Plain arrays in, plain arrays out: numpy, scipy and sympy only (no torch, no genlab model).
"""

from genlab.linear._hypentropy import DUAL_TOL, diag_sharpness, hypentropy_expressions, hypentropy_solution, q_alpha
from genlab.linear._interpolants import (
    INTERPOLATION_TOL,
    batch_quadratics,
    interpolable,
    min_l1_solution,
    min_norm_solution,
)
from genlab.linear._margins import cosine, margin_of, max_margin_direction, separable
from genlab.linear._statistics import (
    l1_norm,
    l2_norm,
    mean_squared_error,
    planted_beta,
    planted_support_recovery,
    sign_error,
    support_fraction,
)

__all__ = [
    "DUAL_TOL",
    "INTERPOLATION_TOL",
    "batch_quadratics",
    "cosine",
    "diag_sharpness",
    "hypentropy_expressions",
    "hypentropy_solution",
    "interpolable",
    "l1_norm",
    "l2_norm",
    "margin_of",
    "max_margin_direction",
    "mean_squared_error",
    "min_l1_solution",
    "min_norm_solution",
    "planted_beta",
    "planted_support_recovery",
    "q_alpha",
    "separable",
    "sign_error",
    "support_fraction",
]
