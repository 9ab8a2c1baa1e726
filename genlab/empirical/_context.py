"""Everything the empirical measurements of one cell share: the task, the network at init and
after training, the training record, and lazily computed (cached) kernels and outputs."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jvp

from genlab.settings import TrainSettings
from genlab.empirical._train import TrainingRun, train
from genlab.kernels import empirical_ntk, gd_dynamics
from genlab.quantities import PROBE_SIZE



@dataclass
class EmpiricalContext:
    """Inputs of the empirical measurements of one cell (see genlab.empirical.kernel_regime)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    kind: str  # "regression" or "classification"
    settings: TrainSettings
    module0: nn.Module  # a frozen copy of the network at initialisation
    module: nn.Module  # the trained network
    run: TrainingRun
    cache: dict[str, Any] = field(default_factory=dict)
    # The task's meta (genlab.tasks.Task.meta: resolved params, target direction w, ...) when the
    # caller passes it; quantities that need it fall back (or return None) when it is empty.
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def probe(self) -> tuple[np.ndarray, np.ndarray]:
        return self.x_train[:PROBE_SIZE], self.y_train[:PROBE_SIZE]

    def cached(self, key: str, compute: Any) -> Any:
        if key not in self.cache:
            self.cache[key] = compute()
        return self.cache[key]

    def outputs(self, which: str, x: np.ndarray, key: str) -> np.ndarray:
        """Outputs of the trained ("end"), initial ("init") or linearized ("linear") model."""
        def compute() -> np.ndarray:
            if which == "linear" and linear_closed_form(self.settings) and self.y_train.shape[1] == 1:
                return self._linear_closed_form(x)
            if which == "linear":
                return self._forward(self.linearized()[0], x)
            return self._forward(self.module if which == "end" else self.module0, x)

        return self.cached(f"outputs/{which}/{key}", compute)

    def _forward(self, forward: Any, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return forward(_as_param_tensor(self.module, x)).cpu().numpy()

    def _linear_closed_form(self, x: np.ndarray) -> np.ndarray:
        """Full-batch GD on the linearized model is f_{s+1} = f_s - (eta c / n) Theta_0 (f_s - y)
        with Theta_0 the empirical NTK at init and c the loss scale: solved in closed form."""
        scale = float(getattr(self.module0, "loss_scale", 1.0))
        k_train = self.cached("ntk/init/train", lambda: empirical_ntk(self.module0, self.x_train))
        trajectory = gd_dynamics(
            k_train, self.y_train, empirical_ntk(self.module0, x, self.x_train),
            lr=self.settings.effective_lr(len(self.x_train)) * scale, steps=self.run.final_step,
            f0_train=self.outputs("init", self.x_train, "train"), f0_test=self._forward(self.module0, x),
        )
        return trajectory.f_test[-1]

    def ntk(self, which: str) -> np.ndarray:
        """Empirical NTK on the probe at init or at the end of training."""
        module = self.module0 if which == "init" else self.module
        return self.cached(f"ntk/{which}", lambda: empirical_ntk(module, self.probe[0]))

    def linearized(self) -> tuple[Any, TrainingRun]:
        """The first-order Taylor model at theta_0, trained with the same settings (Lee et al. 2019)."""
        return self.cached("linearized", lambda: train_linearized(self.module0, self))


def linear_closed_form(settings: TrainSettings) -> bool:
    """Whether training the linearized model is exactly the GD recursion of gd_dynamics (for one
    output: with several, the finite-width NTK couples the outputs and training is explicit)."""
    return (
        settings.optimizer == "gd" and settings.loss == "mse" and settings.momentum == 0
        and settings.weight_decay == 0 and settings.schedule == "constant"
    )


def _as_param_tensor(module: nn.Module, x: np.ndarray) -> torch.Tensor:
    ref = next(iter(module.parameters()))
    return torch.as_tensor(x).to(ref.device, ref.dtype)


def linearize(module: nn.Module) -> tuple[Any, list[torch.Tensor]]:
    """``f_lin(x; theta) = f(x; theta_0) + J(theta_0) (theta - theta_0)`` via one forward-mode jvp.

    Returns the forward function and the parameters theta (initialised at theta_0) it is
    trained in; weight decay and Adam then act on theta exactly as for the network.
    """
    names = [name for name, p in module.named_parameters() if p.requires_grad]
    theta0 = {name: p.detach().clone() for name, p in module.named_parameters() if p.requires_grad}
    theta = {name: theta0[name].clone().requires_grad_(True) for name in names}

    def forward(x: torch.Tensor) -> torch.Tensor:
        tangent = {name: theta[name] - theta0[name] for name in names}
        f0, df = jvp(functools.partial(_call, module, x), (theta0,), (tangent,))
        return f0 + df

    return forward, list(theta.values())


def _call(module: nn.Module, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    return functional_call(module, params, (x,))


def train_linearized(module0: nn.Module, ctx: EmpiricalContext) -> tuple[Any, TrainingRun]:
    frozen = copy.deepcopy(module0)
    forward, params = linearize(frozen)
    run = train(frozen, ctx.x_train, ctx.y_train, ctx.settings, forward=forward, params=params)
    return forward, run
