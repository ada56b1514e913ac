"""Typed reads of option values held as objects: a store's or section's options, and command-line overrides.

oslo.config has parsed each value already (an IntOpt is an int, a ListOpt a list); these say so to the type
checker and fail as int() and float() would on anything else.
"""

from __future__ import annotations


def as_int(value: object) -> int:
    if isinstance(value, int | float | str):
        return int(value)
    raise TypeError(f"expected an integer option value, got {value!r}")


def as_float(value: object) -> float:
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"expected a number as option value, got {value!r}")


def as_list(value: object) -> list[object]:
    """A list option's items; an unset (None) or empty value has none."""
    if not value:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    raise TypeError(f"expected a list option value, got {value!r}")


def as_dict(value: object) -> dict[object, object]:
    """A dict option's items; an unset (None) or empty value has none."""
    if not value:
        return {}
    if isinstance(value, dict):
        return dict(value)
    raise TypeError(f"expected a dict option value, got {value!r}")
