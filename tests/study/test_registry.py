"""The registry pairs theory/<topic>.py with empirical/<topic>.py by quantity name."""

from __future__ import annotations

import importlib

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


@pytest.mark.parametrize("topic", sorted({q.topic for q in QUANTITIES.values()}))
def test_every_theory_function_of_a_topic_is_registered(topic: str) -> None:
    """A prediction in theory/<topic>.py that no registry line names would never be paired."""
    module = importlib.import_module(f"genlab.theory.{topic}")
    public = {n for n, f in vars(module).items() if callable(f) and getattr(f, "__module__", "") == module.__name__ and not n.startswith("_")}
    assert public <= set(QUANTITY_NAMES), public - set(QUANTITY_NAMES)
