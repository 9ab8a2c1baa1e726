"""The registry pairs theory/<topic>.py with empirical/<topic>.py by quantity name, and what it
says about a quantity's theory side is what the code has."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing

import pytest

import genlab.theory
from genlab.quantities import Prediction
from genlab.study._registry import QUANTITIES, QUANTITY_NAMES, theory_functions
from genlab.theory import TheoryContext


def _predictions_by_import() -> dict[str, set[str]]:
    """Independently of the registry's source parsing: import every theory module and keep its
    public functions whose first parameter's resolved type hint is TheoryContext and whose
    resolved return hint is Prediction."""
    found: dict[str, set[str]] = {}
    for info in pkgutil.iter_modules(genlab.theory.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"genlab.theory.{info.name}")
        for name, fn in vars(module).items():
            if not inspect.isfunction(fn) or fn.__module__ != module.__name__ or name.startswith("_"):
                continue
            params = list(inspect.signature(fn).parameters)
            hints = typing.get_type_hints(fn)
            if params and hints.get(params[0]) is TheoryContext and hints.get("return") is Prediction:
                found.setdefault(info.name, set()).add(name)
    return found


@pytest.mark.parametrize("name", QUANTITY_NAMES)
def test_each_quantity_resolves_on_both_sides_by_its_own_name(name: str) -> None:
    spec = QUANTITIES[name]
    assert spec.empirical(name).__name__ == name
    if spec.has_theory(name):
        theory = spec.theory(name)
        assert theory.__name__ == name and theory.__module__ == f"genlab.theory.{spec.topic}"
    else:
        assert spec.theory(name) is None
        module = importlib.import_module(f"genlab.empirical.{spec.topic}")  # the empirical side exists
        assert callable(getattr(module, name))
    if spec.hook is not None:
        assert callable(spec.hook_factory())


def test_theory_sides_read_from_source_equal_those_found_by_import() -> None:
    """Both directions: every quantity said to have a theory side has that prediction function,
    and every prediction function in genlab.theory is a registered quantity of its topic."""
    by_import = _predictions_by_import()
    assert by_import, "no prediction functions found in genlab.theory"
    claimed = {(q.topic, name) for name, q in QUANTITIES.items() if q.has_theory(name)}
    existing = {(topic, name) for topic, names in by_import.items() for name in names}
    assert claimed == existing, {"claimed without a function": claimed - existing, "unregistered": existing - claimed}
    for topic, names in by_import.items():
        assert theory_functions(topic) == names
    for name, q in QUANTITIES.items():  # a prediction missing its annotations would lose its theory side
        module = importlib.import_module(f"genlab.theory.{q.topic}") if theory_functions(q.topic) else None
        if module is not None and inspect.isfunction(getattr(module, name, None)):
            assert q.has_theory(name), f"genlab.theory.{q.topic}.{name} is not annotated (ctx: TheoryContext) -> Prediction"


def test_quantities_without_a_theory_side_are_exactly_those_without_a_function() -> None:
    """The landscape measurements with no closed form (hessian_trace, trajectories, slices) and
    the generalization measures have no theory side; the EoS sharpness does."""
    assert not QUANTITIES["hessian_trace"].has_theory("hessian_trace")
    assert not QUANTITIES["loss_plane"].has_theory("loss_plane")
    assert not QUANTITIES["generalization_gap"].has_theory("generalization_gap")
    assert QUANTITIES["generalization_gap"].theory("generalization_gap") is None
    assert QUANTITIES["sharpness"].has_theory("sharpness")
    assert theory_functions("no_such_topic") == frozenset()


def test_a_theory_side_returns_a_prediction_of_its_own_name() -> None:
    """A prediction is called on a context and answers with its own name (here muP, where the
    kernel-regime theory makes no prediction, so no kernel is computed)."""
    import numpy as np

    from genlab.settings import TrainSettings
    from genlab.models import ArchSpec

    x = np.linspace(-1, 1, 8).reshape(4, 2)
    ctx = TheoryContext(spec=ArchSpec(parametrization="mup"), width=8, centered=True, settings=TrainSettings(),
                        x_train=x, y_train=x[:, :1], x_test=x, y_test=x[:, :1], kind="regression", steps=np.array([0, 1]))
    for name in ("ntk_drift", "weight_change", "alignment_init"):
        prediction = QUANTITIES[name].theory(name)(ctx)
        assert isinstance(prediction, Prediction) and prediction.name == name and prediction.value is None
