"""Parameter validation with messages in the scikit-learn style.

Example:
    >>> check_int("epochs", -3, "train", low=1)
    Traceback (most recent call last):
    ...
    edgeproof.errors.UsageError: The 'epochs' parameter of train must be an int in [1, inf). Got -3 instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from edgeproof.errors import UsageError


def _interval(low, high, closed_high=True) -> str:
    lo = "-inf" if low is None else repr(low)
    hi = "inf" if high is None else repr(high)
    right = "]" if (high is not None and closed_high) else ")"
    left = "(" if low is None else "["
    return f"{left}{lo}, {hi}{right}"


def check_int(name: str, value, owner: str, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` if it is an int in [low, high], else raise UsageError."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    ok = ok and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        raise UsageError(
            f"The '{name}' parameter of {owner} must be an int in {_interval(low, high)}. "
            f"Got {value!r} instead."
        )
    return value


def check_float(name: str, value, owner: str, low: float | None = None, high: float | None = None,
                low_open: bool = False) -> float:
    """Return ``value`` as float if it lies in the interval, else raise UsageError."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = None
    ok = v is not None and v == v
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v <= high
    if not ok:
        left = "(" if low_open else "["
        rng = _interval(low, high).replace("[", left, 1) if low is not None else _interval(low, high)
        raise UsageError(
            f"The '{name}' parameter of {owner} must be a float in {rng}. Got {value!r} instead."
        )
    return v


def check_choice(name: str, value: str, choices: Iterable[str], owner: str) -> str:
    """Return ``value`` if it is one of ``choices``; else list them (and a close match)."""
    choices = list(choices)
    if value in choices:
        return value
    close = difflib.get_close_matches(str(value), choices, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise UsageError(
        f"Unknown {name} '{value}' for {owner}.{hint} Valid: {', '.join(choices)}."
    )


def parse_list(value: str | Iterable[str] | None) -> list[str]:
    """Split ``"a,b, c"`` (or pass a list through) into names, dropping blanks."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(",")
    return [v.strip() for v in value if v and v.strip()]
