"""The domain's errors. api/errors.py is the one table that maps them to HTTP."""

from __future__ import annotations


class GlimpseError(Exception):
    """Base of every error Glimpse raises on purpose; the message is shown to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(GlimpseError):
    pass


class NotFound(GlimpseError):
    pass


class Forbidden(GlimpseError):
    pass


class Conflict(GlimpseError):
    pass


class InUse(Conflict):
    """Image data others depend on (clones of it in Ceph): it cannot be removed yet."""


class ClaimLost(Conflict):
    """Another process claimed the task since: this worker may neither publish nor delete shared data."""


class Gone(GlimpseError):
    """The image went away (deleted) while its data was being written."""


class TooLarge(GlimpseError):
    """A size cap or a quota would be exceeded."""


class UnsupportedMediaType(GlimpseError):
    pass


class UriTooLong(GlimpseError):
    """The request's URL (its query string) is longer than the service reads."""


class HeadersTooLarge(GlimpseError):
    """Too many request headers, or one too long."""


class RangeNotSatisfiable(GlimpseError):
    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class StoreError(GlimpseError):
    """A storage backend failed in a way the user cannot fix."""


class StoreFull(TooLarge):
    pass


class StoreUnavailable(GlimpseError):
    pass


class ConfigError(GlimpseError):
    pass
