"""The registry that pairs theory with measurement by quantity name.

Each quantity names its topic: the empirical function ``genlab.empirical.<topic>.<name>`` and,
when the theory predicts it, ``genlab.theory.<topic>.<name>``. Adding a quantity = one empirical
function + one line here (+ one theory function of the same name, if theory predicts it).

Whether a quantity has a theory side is not declared but read from the code: a quantity has one
iff ``genlab/theory/<topic>.py`` defines a public top-level function of that name that takes a
``TheoryContext`` first and returns a ``Prediction`` (the module's source is parsed, not
imported, so nothing heavy is loaded until a cell runs).
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def _names(annotation: ast.expr | None, type_name: str) -> bool:
    """Whether an annotation (possibly a string, possibly dotted) names ``type_name``."""
    return annotation is not None and ast.unparse(annotation).strip("'\"").split(".")[-1] == type_name


@functools.lru_cache(maxsize=None)
def theory_functions(topic: str) -> frozenset[str]:
    """Names of the predictions in ``genlab/theory/<topic>.py``: public top-level functions whose
    first parameter is annotated ``TheoryContext`` and whose return is annotated ``Prediction``
    (helpers such as ``min_norm_applies(ctx) -> bool`` are not predictions). Empty when the topic
    has no theory module."""
    spec = importlib.util.find_spec(f"genlab.theory.{topic}")
    if spec is None or spec.origin is None:
        return frozenset()
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    names = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.args.args:
            if _names(node.args.args[0].annotation, "TheoryContext") and _names(node.returns, "Prediction"):
                names.add(node.name)
    return frozenset(names)


@dataclass(frozen=True)
class QuantitySpec:
    """Where a quantity's two sides live, and the training hook it needs, if any: a factory in
    the empirical module called before training as ``factory(module, x_train, y_train,
    settings)`` and returning a genlab.empirical._train.Hook."""

    topic: str
    hook: str | None = None

    def has_theory(self, name: str) -> bool:
        """Whether ``genlab.theory.<topic>`` predicts ``name`` (read from its source)."""
        return name in theory_functions(self.topic)

    def empirical(self, name: str) -> Callable:
        return getattr(importlib.import_module(f"genlab.empirical.{self.topic}"), name)

    def theory(self, name: str) -> Callable | None:
        """The prediction function, or None where the theory does not predict ``name``."""
        if not self.has_theory(name):
            return None
        return getattr(importlib.import_module(f"genlab.theory.{self.topic}"), name)

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
    "generalization_gap": QuantitySpec("generalization"),
    # implicit_bias topic: implicit-regularization solutions of linear predictors
    "solution_distance": QuantitySpec("implicit_bias"),
    "solution_l1": QuantitySpec("implicit_bias"),
    "solution_l2": QuantitySpec("implicit_bias"),
    "support_recovery": QuantitySpec("implicit_bias"),
    "solution_test_mse": QuantitySpec("implicit_bias"),
    "margin_cosine": QuantitySpec("implicit_bias", hook="margin_hook"),
    "normalized_margin": QuantitySpec("implicit_bias", hook="margin_hook"),
    "direction_test_error": QuantitySpec("implicit_bias"),
    # implicit_regularization topic: SGD's implicit regularizer on a network (Smith et al. 2021)
    "batch_gradient_norm": QuantitySpec("implicit_regularization", hook="batch_gradient_hook"),
    "batch_gradient_norm_init": QuantitySpec("implicit_regularization"),
    "full_gradient_norm": QuantitySpec("implicit_regularization", hook="batch_gradient_hook"),
    "gradient_noise": QuantitySpec("implicit_regularization", hook="batch_gradient_hook"),
    "sgd_epoch_error_flow": QuantitySpec("implicit_regularization"),
    "sgd_epoch_error_modified": QuantitySpec("implicit_regularization"),
    "sgd_epoch_mc_error": QuantitySpec("implicit_regularization"),
    # generalization topic (issue 5): learning curves, norm/flatness measures, nn vs kernel
    "learning_curve_mse": QuantitySpec("generalization"),
    "spectral_margin_bound": QuantitySpec("generalization"),
    "path_norm": QuantitySpec("generalization"),
    "frobenius_distance": QuantitySpec("generalization"),
    "pacbayes_flatness": QuantitySpec("generalization"),
    "pacbayes_bound": QuantitySpec("generalization"),
    "pacbayes_kl": QuantitySpec("generalization"),
    "nngp_test_mse": QuantitySpec("features"),
    "first_layer_alignment": QuantitySpec("features"),
    # optimization topic (issue 6, single-process optimizers): steps to a target training loss
    "steps_to_target_loss": QuantitySpec("optimization"),
}

QUANTITY_NAMES: tuple[str, ...] = tuple(QUANTITIES)
