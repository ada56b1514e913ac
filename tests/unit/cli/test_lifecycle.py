"""`glimpse bin` and `glimpse image`: periods with units, and the PATCH each deprecation command sends."""

from __future__ import annotations

import argparse

import pytest

from glimpse.cli.lifecycle import _deprecation_patch, parse_period
from glimpse.errors import BadRequest


def test_periods() -> None:
    assert [parse_period(p) for p in ("90", "30s", "15m", "12h", "7d", "2w", "0")] == [
        90, 30, 900, 43200, 604800, 1209600, 0,
    ]  # fmt: skip
    for bad in ("-1", "1y", "1.5d", "", "d"):
        with pytest.raises(BadRequest):
            parse_period(bad)


def _args(command: str, **values: object) -> argparse.Namespace:
    return argparse.Namespace(image_command=command, **values)


def test_deprecation_commands_patch_the_properties() -> None:
    now = _deprecation_patch(_args("deprecate", replacement="R", at=None, obsolete_at=None))
    assert now == [
        {"op": "add", "path": "/replacement_image", "value": "R"},
        {"op": "add", "path": "/deprecation_status", "value": "deprecated"},
    ]
    scheduled = _deprecation_patch(_args("deprecate", replacement=None, at="2030-01-01T00:00:00Z", obsolete_at="2031"))
    assert scheduled == [
        {"op": "add", "path": "/deprecate_at", "value": "2030-01-01T00:00:00Z"},
        {"op": "add", "path": "/obsolete_at", "value": "2031"},
    ]
    assert _deprecation_patch(_args("obsolete", replacement=None, at=None)) == [
        {"op": "add", "path": "/deprecation_status", "value": "obsolete"}
    ]
    assert _deprecation_patch(_args("undeprecate")) == [{"op": "add", "path": "/deprecation_status", "value": "active"}]
