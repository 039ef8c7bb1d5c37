"""A deep copy for JSON-shaped data (session state), several times faster than deepcopy."""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")


def copy_json(value: T) -> T:
    """Copy dicts and lists all the way down; everything else (str, numbers, None, bool) is
    immutable and shared. Tuples are copied as tuples."""
    return _copy(value)  # type: ignore[no-any-return]


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_copy(item) for item in value)
    return value
