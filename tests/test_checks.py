"""genlab._checks: one rule for ints, reals, bools and choices; errors carry owner, key and message."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from genlab._checks import InvalidArgument, boolean, choice, integer, is_integer, is_real, real


@pytest.mark.parametrize("value", [3, np.int64(3), np.int8(3), np.uint16(3)])
def test_integer_accepts_python_and_numpy_ints_and_returns_a_python_int(value: object) -> None:
    out = integer(value, "n", minimum=1)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", [True, np.bool_(True), 3.0, np.float64(3.0), "3", None])
def test_integer_rejects_bools_floats_and_strings(value: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^n must be an int; got "):
        integer(value, "n")


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.5), np.float64(0.5), np.int64(1)])
def test_real_accepts_python_and_numpy_scalars_and_returns_a_python_float(value: object) -> None:
    out = real(value, "x", low=0.0)
    assert out == float(value) and type(out) is float


@pytest.mark.parametrize("value", [True, np.bool_(False), "0.5", None, [0.5]])
def test_real_rejects_bools_and_non_numbers(value: object) -> None:
    with pytest.raises(InvalidArgument, match=r"^x must be a finite float; got "):
        real(value, "x")


def test_the_predicates_follow_the_same_rule() -> None:
    assert is_integer(np.int32(1)) and not is_integer(True) and not is_integer(1.0)
    assert is_real(np.float32(1)) and is_real(2) and is_real(float("inf"))
    assert not is_real(False) and not is_real(np.bool_(True)) and not is_real("1")


def test_real_is_finite_unless_told_otherwise() -> None:
    with pytest.raises(InvalidArgument, match=r"^x must be a finite float; got nan$"):
        real(float("nan"), "x")
    assert real(float("inf"), "x", low=0.0, finite=False) == float("inf")


@pytest.mark.parametrize(
    ("value", "kwargs", "ok"),
    [
        (0.0, {"low": 0.0}, True),
        (0.0, {"low": 0.0, "low_open": True}, False),
        (1.0, {"high": 1.0}, True),
        (1.0, {"high": 1.0, "high_open": True}, False),
        (0.5, {"low": 0.0, "high": 1.0, "low_open": True, "high_open": True}, True),
        (-0.1, {"low": 0.0, "high": 1.0}, False),
    ],
)
def test_interval_ends_are_closed_unless_open(value: float, kwargs: dict, ok: bool) -> None:
    if ok:
        assert real(value, "x", **kwargs) == value
    else:
        with pytest.raises(InvalidArgument):
            real(value, "x", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"low": 0.0, "low_open": True}, "a finite float > 0"),
        ({"low": 0.0}, "a finite float >= 0"),
        ({"high": 2.5, "high_open": True}, "a finite float < 2.5"),
        ({"low": 0.0, "high": 1.0, "high_open": True}, "a float in [0, 1)"),
        ({"low": 0.0, "high": 1.0, "low_open": True}, "a float in (0, 1]"),
    ],
)
def test_the_message_states_the_interval(kwargs: dict, expected: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        real(-7.0 if "low" in kwargs else 9.0, "x", **kwargs)
    assert info.value.message.startswith(f"must be {expected}; got ")


def test_integer_bounds_in_the_message() -> None:
    with pytest.raises(InvalidArgument, match=r"^task\.degree must be an int in 1\.\.6; got 7$"):
        integer(7, "degree", owner="task", minimum=1, maximum=6)
    with pytest.raises(InvalidArgument, match=r"^k must be an int >= 2; got 1$"):
        integer(1, "k", minimum=2)
    with pytest.raises(InvalidArgument, match=r"^k must be a positive int; got 0$"):
        integer(0, "k", minimum=1, expected="a positive int")


def test_choice_lists_the_valid_names() -> None:
    assert choice("sgd", "optimizer", ("gd", "sgd")) == "sgd"
    with pytest.raises(InvalidArgument, match=r"^train\.optimizer must be one of 'gd', 'sgd'; got 'adamw'$"):
        choice("adamw", "optimizer", ("gd", "sgd"), owner="train")
    with pytest.raises(InvalidArgument, match=r"got 1$"):
        choice(1, "optimizer", ("gd", "sgd"))


def test_boolean_accepts_only_bools() -> None:
    assert boolean(np.bool_(True), "flag") is True
    with pytest.raises(InvalidArgument, match=r"^train\.flag must be true or false; got 1$"):
        boolean(1, "flag", owner="train")


def test_the_error_carries_owner_key_and_message() -> None:
    with pytest.raises(ValueError) as info:
        real(-1, "lr", owner="train", low=0.0, low_open=True)
    error = info.value
    assert isinstance(error, InvalidArgument)
    assert (error.owner, error.key, error.message) == ("train", "lr", "must be a finite float > 0; got -1")
    assert str(error) == "train.lr must be a finite float > 0; got -1"


def test_str_without_owner_or_key() -> None:
    assert str(InvalidArgument("must be an int; got 'a'", key="seed")) == "seed must be an int; got 'a'"
    assert str(InvalidArgument("n_train + n_test exceed the pool", owner="task")) == "n_train + n_test exceed the pool"


def test_a_caller_error_class_is_raised_and_survives_pickling() -> None:
    class CallerError(InvalidArgument):
        pass

    with pytest.raises(CallerError) as info:
        integer(0, "depth", owner="ArchSpec", minimum=1, error=CallerError)
    copy = pickle.loads(pickle.dumps(InvalidArgument("must be an int; got 0.5", key="n", owner="task")))
    assert (copy.owner, copy.key, copy.message, str(copy)) == ("task", "n", "must be an int; got 0.5", "task.n must be an int; got 0.5")
    assert str(info.value) == "ArchSpec.depth must be an int >= 1; got 0"
