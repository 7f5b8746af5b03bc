"""Checking a function's plain parameters the way every catalog function reports them: one
ValueError naming the input, the rule and the value. Needs nothing beyond the standard library."""

from __future__ import annotations

from typing import Any


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    """An int (not a bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
