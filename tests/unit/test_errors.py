"""glimpse.errors: every domain error carries the HTTP status all interfaces answer it with."""

from __future__ import annotations

import pytest

from glimpse import errors
from glimpse.api import errors as api_errors
from glimpse.dashboard import images as dashboard_images
from glimpse.errors import GlimpseError


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (errors.BadRequest("x"), 400),
        (errors.Forbidden("x"), 403),
        (errors.NotFound("x"), 404),
        (errors.Conflict("x"), 409),
        (errors.InUse("x"), 409),
        (errors.ClaimLost("x"), 409),
        (errors.Gone("x"), 410),
        (errors.TooLarge("x"), 413),
        (errors.StoreFull("x"), 413),
        (errors.UriTooLong("x"), 414),
        (errors.UnsupportedMediaType("x"), 415),
        (errors.RangeNotSatisfiable("x", 3), 416),
        (errors.HeadersTooLarge("x"), 431),
        (errors.StoreError("x"), 500),
        (errors.ConfigError("x"), 500),
        (errors.GlimpseError("x"), 500),
        (errors.StoreUnavailable("x"), 503),  # Glance: HTTPServiceUnavailable when a store cannot be reached
    ],
)
def test_status_for(exc: GlimpseError, status: int) -> None:
    assert errors.status_for(exc) == status


def test_every_interface_uses_the_one_table() -> None:
    assert api_errors.status_for is errors.status_for
    assert vars(dashboard_images)["status_for"] is errors.status_for
