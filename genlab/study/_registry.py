"""The registry that pairs theory with measurement by quantity name.

Each quantity names its topic: the empirical function ``genlab.empirical.<topic>.<name>`` and,
when the theory predicts it, ``genlab.theory.<topic>.<name>``. Adding a quantity = one theory
function + one empirical function + one line here. Nothing heavy is imported until a cell runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class QuantitySpec:
    """Where a quantity's two sides live, and the training hook it needs, if any: a factory in
    the empirical module called before training as ``factory(module, x_train, y_train,
    settings)`` and returning a genlab.empirical._train.Hook."""

    topic: str
    hook: str | None = None
    has_theory: bool = True  # False: genlab.theory.<topic> does not predict it (no module needed)

    def empirical(self, name: str) -> Callable:
        return getattr(importlib.import_module(f"genlab.empirical.{self.topic}"), name)

    def theory(self, name: str) -> Callable | None:
        if not self.has_theory:
            return None
        return getattr(importlib.import_module(f"genlab.theory.{self.topic}"), name, None)

    def hook_factory(self) -> Callable | None:
        if self.hook is None:
            return None
        return getattr(importlib.import_module(f"genlab.empirical.{self.topic}"), self.hook)


QUANTITIES: dict[str, QuantitySpec] = {
    "train_loss": QuantitySpec("kernel_regime"),
    "test_loss": QuantitySpec("kernel_regime"),
    "train_loss_curve": QuantitySpec("kernel_regime"),
    "test_loss_curve": QuantitySpec("kernel_regime"),
    "test_mse": QuantitySpec("kernel_regime"),
    "test_error": QuantitySpec("kernel_regime"),
    "ntk_drift": QuantitySpec("kernel_regime", hook="ntk_drift_hook"),
    "alignment_init": QuantitySpec("kernel_regime"),
    "alignment_end": QuantitySpec("kernel_regime"),
    "weight_change": QuantitySpec("kernel_regime"),
    "linearization_distance": QuantitySpec("kernel_regime"),
    "feature_cka": QuantitySpec("features"),
    "feature_rank": QuantitySpec("features"),
    "init_kernel_test_mse": QuantitySpec("features"),
    "after_kernel_test_mse": QuantitySpec("features"),
    "sharpness": QuantitySpec("landscape", hook="sharpness_hook"),
    "sharpness_max": QuantitySpec("landscape", hook="sharpness_hook"),
    "sharpness_late": QuantitySpec("landscape", hook="sharpness_hook"),
    "steps_to_eos": QuantitySpec("landscape", hook="sharpness_hook"),
    "hessian_trace": QuantitySpec("landscape"),
    "sharpness_trace_ratio": QuantitySpec("landscape", hook="sharpness_hook"),
    "path_length": QuantitySpec("landscape", hook="trajectory_hook"),
    "distance_from_init": QuantitySpec("landscape", hook="trajectory_hook"),
    "trajectory_pca_variance": QuantitySpec("landscape", hook="trajectory_hook"),
    "nonuniformity": QuantitySpec("landscape"),
    "sgd_stability": QuantitySpec("landscape"),
    "spectral_density": QuantitySpec("landscape"),
    "interpolation_barrier": QuantitySpec("landscape"),
    "loss_plane": QuantitySpec("landscape"),
    "generalization_gap": QuantitySpec("generalization", has_theory=False),
    # implicit_bias topic: implicit-regularization solutions of linear predictors
    "solution_distance": QuantitySpec("implicit_bias"),
    "solution_l1": QuantitySpec("implicit_bias"),
    "solution_l2": QuantitySpec("implicit_bias"),
    "support_recovery": QuantitySpec("implicit_bias"),
    "solution_test_mse": QuantitySpec("implicit_bias"),
    "margin_cosine": QuantitySpec("implicit_bias", hook="margin_hook"),
    "normalized_margin": QuantitySpec("implicit_bias", hook="margin_hook"),
    "direction_test_error": QuantitySpec("implicit_bias"),
    # implicit_bias topic: SGD's implicit regularizer on a network (Smith et al. 2021)
    "batch_gradient_norm": QuantitySpec("implicit_bias", hook="batch_gradient_hook", has_theory=False),
    "batch_gradient_norm_init": QuantitySpec("implicit_bias", has_theory=False),
    "full_gradient_norm": QuantitySpec("implicit_bias", hook="batch_gradient_hook", has_theory=False),
    "gradient_noise": QuantitySpec("implicit_bias", hook="batch_gradient_hook", has_theory=False),
    "sgd_epoch_error_flow": QuantitySpec("implicit_bias", has_theory=False),
    "sgd_epoch_error_modified": QuantitySpec("implicit_bias", has_theory=False),
    "sgd_epoch_mc_error": QuantitySpec("implicit_bias", has_theory=False),
    # generalization topic (issue 5): learning curves, norm/flatness measures, nn vs kernel
    "learning_curve_mse": QuantitySpec("generalization"),
    "spectral_margin_bound": QuantitySpec("generalization", has_theory=False),
    "path_norm": QuantitySpec("generalization", has_theory=False),
    "frobenius_distance": QuantitySpec("generalization", has_theory=False),
    "pacbayes_flatness": QuantitySpec("generalization", has_theory=False),
    "pacbayes_bound": QuantitySpec("generalization", has_theory=False),
    "pacbayes_kl": QuantitySpec("generalization", has_theory=False),
    "nngp_test_mse": QuantitySpec("features"),
    "first_layer_alignment": QuantitySpec("features"),
    # optimization topic (issue 6, single-process optimizers): steps to a target training loss
    "steps_to_target_loss": QuantitySpec("optimization", has_theory=False),
}

QUANTITY_NAMES: tuple[str, ...] = tuple(QUANTITIES)
