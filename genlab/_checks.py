"""Argument checks: one rule for what counts as an int, a real or a bool, and one error type that
carries the offending key as data.

The rule, everywhere in genlab: a bool (Python or numpy) is never a number; Python and numpy
integer scalars are ints; those and Python and numpy floating scalars are reals. A check returns
the value as a plain Python ``int`` / ``float`` / ``bool`` / ``str``.

A failed check raises :class:`InvalidArgument` (a ``ValueError``) whose text names the key,
says what was expected and shows the value found::

    train.lr must be a finite float > 0; got -1

``owner`` ("train", "ArchSpec", "task", or None for a plain argument), ``key`` ("lr") and
``message`` ("must be a finite float > 0; got -1") are attributes, so that a caller (the study
schema) can report the key without reading it back out of the text. Callers with their own
error type (SettingsError, SpecError, TaskError) subclass InvalidArgument and pass it as
``error``.

A bottom-layer module: it imports nothing from genlab, and not numpy either (numpy registers its
scalar types with :mod:`numbers`), so that commands that only validate stay light.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["InvalidArgument", "boolean", "choice", "integer", "is_integer", "is_real", "real"]


class InvalidArgument(ValueError):
    """An argument or field has an invalid value.

    ``str(error)`` is ``"<owner>.<key> <message>"`` (``"<key> <message>"`` without an owner);
    without a key, the message is a whole sentence about several values and is the text.

    Attributes:
        message: what was expected and the value found, e.g. ``"must be an int >= 1; got 0"``.
        key: the field or argument name, e.g. ``"n_train"``; None when no single key is at fault.
        owner: what the key belongs to, e.g. ``"task"``, ``"train"``, ``"ArchSpec"``; or None.
    """

    def __init__(self, message: str, *, key: str | None = None, owner: str | None = None) -> None:
        self.message, self.key, self.owner = message, key, owner
        name = f"{owner}.{key}" if owner and key else key
        super().__init__(f"{name} {message}" if name else message)

    def __reduce__(self) -> tuple[Any, ...]:
        # keyword-only data: rebuild from the attributes, not from the formatted text in args
        return _rebuild, (type(self), self.message, self.key, self.owner)


def _rebuild(cls: type[InvalidArgument], message: str, key: str | None, owner: str | None) -> InvalidArgument:
    return cls(message, key=key, owner=owner)


def _is_numpy_bool(value: Any) -> bool:
    """Whether ``value`` is a numpy bool; one can exist only if numpy is already imported."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.bool_)


def is_integer(value: Any) -> bool:
    """True for Python and numpy integer scalars, False for bools."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """True for Python and numpy integer or floating scalars (finite or not), False for bools."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not _is_numpy_bool(value)


def _number(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _fail(error: type[InvalidArgument], owner: str | None, key: str, expected: str, value: Any) -> InvalidArgument:
    return error(f"must be {expected}; got {value!r}", key=key, owner=owner)


def integer(
    value: Any,
    key: str,
    *,
    owner: str | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
    expected: str | None = None,
    error: type[InvalidArgument] = InvalidArgument,
) -> int:
    """``value`` as an int, required to lie in [minimum, maximum] (either end may be absent).

    ``expected`` replaces the default description ("an int >= 1", "an int in 1..6") in the message.
    """
    if not is_integer(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if expected is None:
            if minimum is not None and maximum is not None:
                expected = f"an int in {minimum}..{maximum}"
            elif minimum is not None:
                expected = f"an int >= {minimum}"
            elif maximum is not None:
                expected = f"an int <= {maximum}"
            else:
                expected = "an int"
        raise _fail(error, owner, key, expected, value)
    return int(value)


def real(
    value: Any,
    key: str,
    *,
    owner: str | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = True,
    expected: str | None = None,
    error: type[InvalidArgument] = InvalidArgument,
) -> float:
    """``value`` as a float, finite unless ``finite=False``, and in the interval from ``low`` to
    ``high`` (either end may be absent; an end is excluded when ``low_open`` / ``high_open``).

    The default description is "a finite float > 0" for one bound and "a float in [0, 1)" for two
    (an interval implies finiteness); ``expected`` replaces it.
    """
    ok = is_real(value) and (not finite or math.isfinite(value))
    ok = ok and (low is None or (value > low if low_open else value >= low))
    ok = ok and (high is None or (value < high if high_open else value <= high))
    if not ok:
        if expected is None:
            expected = _describe_interval(low, high, low_open, high_open, finite)
        raise _fail(error, owner, key, expected, value)
    return float(value)


def _describe_interval(low: float | None, high: float | None, low_open: bool, high_open: bool, finite: bool) -> str:
    if low is not None and high is not None:
        return f"a float in {'(' if low_open else '['}{_number(low)}, {_number(high)}{')' if high_open else ']'}"
    kind = "a finite float" if finite else "a float"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {_number(low)}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {_number(high)}"
    return kind


def choice(
    value: Any,
    key: str,
    options: Sequence[str],
    *,
    owner: str | None = None,
    error: type[InvalidArgument] = InvalidArgument,
) -> str:
    """``value`` if it is one of the strings ``options``; the message lists them all."""
    if not isinstance(value, str) or value not in options:
        raise _fail(error, owner, key, f"one of {', '.join(map(repr, options))}", value)
    return str(value)


def boolean(
    value: Any,
    key: str,
    *,
    owner: str | None = None,
    error: type[InvalidArgument] = InvalidArgument,
) -> bool:
    """``value`` as a bool; only Python and numpy bools are accepted (no 0 / 1)."""
    if not (isinstance(value, bool) or _is_numpy_bool(value)):
        raise _fail(error, owner, key, "true or false", value)
    return bool(value)
