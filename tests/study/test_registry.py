"""The registry pairs theory/<topic>.py with empirical/<topic>.py by quantity name."""

from __future__ import annotations

import importlib
import inspect

import pytest

from genlab.study._registry import QUANTITIES, QUANTITY_NAMES


@pytest.mark.parametrize("name", QUANTITY_NAMES)
def test_each_quantity_resolves_on_both_sides_by_its_own_name(name: str) -> None:
    spec = QUANTITIES[name]
    assert spec.empirical(name).__name__ == name
    theory = spec.theory(name)
    assert theory is None or theory.__name__ == name
    if spec.hook is not None:
        assert callable(spec.hook_factory())


@pytest.mark.parametrize("topic", sorted({q.topic for q in QUANTITIES.values() if q.has_theory}))
def test_every_theory_function_of_a_topic_is_registered(topic: str) -> None:
    """A prediction in theory/<topic>.py (a public function of the cell's TheoryContext) that no
    registry line names would never be paired; closed-form helpers (eos_threshold, ...) are not
    predictions."""
    module = importlib.import_module(f"genlab.theory.{topic}")
    predictions = {
        n for n, f in vars(module).items()
        if inspect.isfunction(f) and f.__module__ == module.__name__ and not n.startswith("_")
        and list(inspect.signature(f).parameters) == ["ctx"]
    }
    assert predictions and predictions <= set(QUANTITY_NAMES), predictions - set(QUANTITY_NAMES)


def test_quantities_without_a_theory_side_return_no_prediction() -> None:
    assert QUANTITIES["generalization_gap"].theory("generalization_gap") is None
