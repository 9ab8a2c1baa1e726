"""ArchSpec validation: every bad field or argument gives one message naming it."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genlab.models import ArchSpec, SpecError


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "mlp"}, r"ArchSpec\.kind must be one of 'fc', 'conv1d', 'conv2d'; got 'mlp'"),
        ({"activation": "tanh"}, r"ArchSpec\.activation must be one of 'relu', 'erf', 'gelu', 'identity', 'linear'; got 'tanh'"),
        ({"parametrization": "ntp"}, r"ArchSpec\.parametrization must be one of .*'mup'; got 'ntp'"),
        ({"depth": -1}, r"ArchSpec\.depth must be an int >= 0 for kind 'fc'; got -1"),
        ({"depth": 1.5}, r"ArchSpec\.depth must be an int"),
        ({"kind": "conv1d", "depth": 0}, r"ArchSpec\.depth must be an int >= 1 for kind 'conv1d'; got 0"),
        ({"w_std": 0.0}, r"ArchSpec\.w_std must be a finite float > 0; got 0\.0"),
        ({"w_std": float("nan")}, r"ArchSpec\.w_std must be a finite float > 0"),
        ({"b_std": -0.1}, r"ArchSpec\.b_std must be None or a finite float >= 0; got -0\.1"),
        ({"out_dim": 0}, r"ArchSpec\.out_dim must be a positive int; got 0"),
        ({"filter_size": True}, r"ArchSpec\.filter_size must be a positive int; got True"),
        ({"padding": "same"}, r"ArchSpec\.padding must be one of 'SAME', 'VALID', 'CIRCULAR'; got 'same'"),
        ({"pooling": "max"}, r"ArchSpec\.pooling must be one of 'flatten', 'global_avg'; got 'max'"),
    ],
)
def test_bad_field_names_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        ArchSpec(**kwargs)


def test_spec_is_frozen_keyword_only_and_hashable() -> None:
    spec = ArchSpec(activation="linear", w_std=2)
    assert spec.activation == "identity" and isinstance(spec.w_std, float)
    assert hash(spec) == hash(ArchSpec(activation="identity", w_std=2.0))
    # frozen: assignment raises dataclasses' FrozenInstanceError (an AttributeError) naming the field
    with pytest.raises(dataclasses.FrozenInstanceError, match=r"cannot assign to field 'depth'"):
        spec.depth = 3  # type: ignore[misc]
    # keyword-only: a positional field is refused by __init__ itself
    with pytest.raises(TypeError, match=r"takes 1 positional argument but 2 were given"):
        ArchSpec("fc")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("spec", "width", "shape", "match"),
    [
        (ArchSpec(), 0, (3,), r"width must be a positive int; got 0"),
        (ArchSpec(), 8, (3, 4), r"input_shape must be a tuple \(d,\) of positive ints for kind 'fc'; got \(3, 4\)"),
        (ArchSpec(kind="conv1d"), 8, (5,), r"input_shape must be a tuple \(length, channels\)"),
        (ArchSpec(kind="conv2d"), 8, (4, 4, 0), r"input_shape must be a tuple \(height, width, channels\)"),
        (
            ArchSpec(kind="conv1d", depth=2, filter_size=3, padding="VALID"),
            8,
            (4, 2),
            r"input_shape=\(4, 2\) is too small for 2 convolutions with filter_size=3, stride=1, padding='VALID'",
        ),
        (ArchSpec(parametrization="mup", depth=0), 8, (3,), r"ArchSpec\.depth must be >= 1 for parametrization 'mup'"),
    ],
)
def test_bad_realisation_argument_names_it(spec: ArchSpec, width: int, shape: tuple, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        spec.to_torch(width, input_shape=shape, seed=0)


def test_seed_is_required_and_must_be_an_int() -> None:
    with pytest.raises(TypeError, match="seed"):
        ArchSpec().to_torch(8, input_shape=(3,))  # type: ignore[call-arg]
    with pytest.raises(SpecError, match=r"seed must be an int; got 1\.0"):
        ArchSpec().to_torch(8, input_shape=(3,), seed=1.0)  # type: ignore[arg-type]


def test_standard_parametrization_needs_width_for_the_kernel() -> None:
    with pytest.raises(SpecError, match=r"width is required for parametrization 'standard'"):
        ArchSpec(parametrization="standard").to_stax()


def test_forward_rejects_mismatched_input_dimension() -> None:
    net = ArchSpec().to_torch(8, input_shape=(5,), seed=0)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 5\); got \(4, 6\)"):
        net(torch.zeros(4, 6))


def test_same_seed_same_network_and_different_seed_differs() -> None:
    spec = ArchSpec(kind="conv1d", b_std=0.1)
    a, b, c = (spec.to_torch(16, input_shape=(7, 2), seed=s) for s in (3, 3, 4))
    x = torch.randn(5, 7, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a(x), b(x))
    assert not torch.equal(a(x), c(x))
