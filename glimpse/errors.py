"""The domain's errors, each with the HTTP status every interface answers it with.

The status sits on the class (`http_status`, inherited by subclasses), so the API, the dashboard and the
request-limit middleware share one table without the dashboard importing api/; api/errors.py keeps only
Glance's body formats. Statuses follow Glance: a store that cannot be reached is 503, a failing one 500.
"""

from __future__ import annotations

from typing import ClassVar


class GlimpseError(Exception):
    """Base of every error Glimpse raises on purpose; the message is shown to the user."""

    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def public_message(self) -> str:
        """What a caller is told; `message`, complete, goes to the server's log."""
        return self.message


class BadRequest(GlimpseError):
    http_status = 400


class NotFound(GlimpseError):
    http_status = 404


class Forbidden(GlimpseError):
    http_status = 403


class PolicyRefused(Forbidden):
    """A policy rule refused the caller; `rule` names it, so an interface can explain it in its own words."""

    def __init__(self, rule: str) -> None:
        super().__init__(f"You are not authorized to complete {rule} action.")
        self.rule = rule


class ImageProtected(Forbidden):
    """A protected image cannot be deleted until it is unprotected."""

    def __init__(self, image_id: str) -> None:
        super().__init__(f"Image {image_id} is protected and cannot be deleted.")
        self.image_id = image_id


class Conflict(GlimpseError):
    http_status = 409


class InUse(Conflict):
    """Image data others depend on (clones of it in Ceph): it cannot be removed yet."""


class ClaimLost(Conflict):
    """Another process claimed the task since: this worker may neither publish nor delete shared data."""


class Gone(GlimpseError):
    """The image went away (deleted) while its data was being written."""

    http_status = 410


class TooLarge(GlimpseError):
    """A size cap or a quota would be exceeded."""

    http_status = 413


class UnsupportedMediaType(GlimpseError):
    http_status = 415


class UriTooLong(GlimpseError):
    """The request's URL (its query string) is longer than the service reads."""

    http_status = 414


class HeadersTooLarge(GlimpseError):
    """Too many request headers, or one too long."""

    http_status = 431


class RangeNotSatisfiable(GlimpseError):
    http_status = 416

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class StoreError(GlimpseError):
    """A storage backend failed in a way the user cannot fix."""


class StoreFull(TooLarge):
    pass


class StoreUnavailable(GlimpseError):
    """A store's backend cannot be reached. Its message names the backend's insides (endpoints, buckets, pools,
    datastore paths): those are for the operator's log; a caller learns only that it may try again."""

    http_status = 503

    @property
    def public_message(self) -> str:
        return "The store holding the image data cannot be reached; try again later."


class LimitsUnavailable(GlimpseError):
    """Keystone's unified limits could not be read: no quota can be checked, so nothing that needs one is done."""

    http_status = 503


class ShuttingDown(GlimpseError):
    """The server is stopping and this transfer could not finish within graceful_shutdown_timeout."""

    http_status = 503


class ConfigError(GlimpseError):
    pass


class PolicyUnavailable(GlimpseError):
    """A policy rule asks a server (an http: check) that did not answer: nobody can say whether the caller may."""

    http_status = 503


class KeyManagerUnavailable(GlimpseError):
    """The key manager holding the certificates of signed images (Barbican) cannot be reached."""

    http_status = 503


class KeyManagerRefused(GlimpseError):
    """The key manager answered, but would not hand the certificate over (no access, not a certificate, ...)."""

    http_status = 400


def status_for(exc: GlimpseError) -> int:
    """The HTTP status of a domain error, the same for the API, the dashboard and the middleware."""
    return exc.http_status
