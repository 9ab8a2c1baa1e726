"""Everything the theory predictions of one cell share: the spec, the data, the optimizer
settings and lazily computed (cached) analytic kernels and the predicted trajectory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genlab.settings import TrainSettings
from genlab.kernels import FunctionSpaceTrajectory, analytic_kernel, gd_dynamics
from genlab.models import ArchSpec



@dataclass
class TheoryContext:
    """Inputs of the theory predictions of one cell (see genlab.theory.kernel_regime).

    ``centered`` is True for an output-scaled network alpha (f - f0), whose initial function
    is 0; otherwise the initial function is random, f0 ~ GP(0, NNGP), and the predictions are
    expectations over it (Lee et al. 2019).
    """

    spec: ArchSpec
    width: int
    centered: bool
    settings: TrainSettings
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    kind: str
    steps: np.ndarray  # the measured steps, where curves are predicted
    cache: dict[str, Any] = field(default_factory=dict)
    # The task's meta (genlab.tasks.Task.meta: resolved params, target direction w, ...) when the
    # caller passes it; quantities that need it fall back (or return None) when it is empty.
    meta: dict[str, Any] = field(default_factory=dict)

    def cached(self, key: str, compute: Any) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    @property
    def has_ntk_limit(self) -> bool:
        """muP has no fixed NTK limit (Yang & Hu 2021): no kernel-regime prediction."""
        return self.spec.parametrization != "mup"

    @property
    def follows_gd_closed_form(self) -> bool:
        """Whether the optimizer's (mean) function-space dynamics are the GD closed form:
        MSE, constant learning rate, no momentum or weight decay, GD or SGD (whose mean update
        is GD's, to first order in the learning rate)."""
        s = self.settings
        return (
            self.has_ntk_limit
            and s.loss == "mse"
            and s.optimizer in ("gd", "sgd")
            and s.momentum == 0
            and s.weight_decay == 0
            and s.schedule == "constant"
        )

    def kernel(self, get: str, which: str) -> np.ndarray:
        """Analytic kernel blocks: "train" (n, n), "test_train" (m, n), "test_test" (m, m)."""
        def compute() -> np.ndarray:
            if which == "train":
                return analytic_kernel(self.spec, self.x_train, get=get, width=self.width)
            if which == "test_train":
                return analytic_kernel(self.spec, self.x_test, self.x_train, get=get, width=self.width)
            return analytic_kernel(self.spec, self.x_test, get=get, width=self.width)

        return self.cached(f"{get}/{which}", compute)

    def trajectory(self) -> FunctionSpaceTrajectory:
        """GD on the infinite-width linearized model at the measured steps: for an uncentred
        network the means and variances over f0 ~ GP(0, NNGP), and at the last step the full
        test-output covariance and the spread of the test loss (gd_dynamics' ``cov_test``,
        ``test_loss_std``)."""
        def compute() -> FunctionSpaceTrajectory:
            prior = None
            if not self.centered:
                prior = (self.kernel("nngp", "train"), self.kernel("nngp", "test_train"), self.kernel("nngp", "test_test"))
            return gd_dynamics(
                self.kernel("ntk", "train"), self.y_train, self.kernel("ntk", "test_train"),
                lr=self.settings.effective_lr(len(self.x_train)), steps=self.steps.astype(np.int64), y_test=self.y_test, prior=prior,
            )

        return self.cached("trajectory", compute)
