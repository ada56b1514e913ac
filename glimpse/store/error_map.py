"""Turning a storage library's errors into the store errors the domain understands, one way for every driver.

A driver subclasses ErrorMap with its `translate`, and wraps each call to its library in
`with Errors(what):`; errors the library does not raise (ours included) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from glimpse.errors import GlimpseError, StoreUnavailable
from glimpse.logsafe import redact_url


class ErrorMap:
    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or isinstance(exc, GlimpseError):
            return
        mapped = self.translate(exc)
        if mapped is not None:
            raise mapped from exc

    def translate(self, exc: BaseException) -> GlimpseError | None:
        """The store error `exc` stands for; None to let it through."""
        raise NotImplementedError()  # pragma: no cover


def guarded_read(
    chunks: Iterable[bytes], failures: tuple[type[BaseException], ...], url: str, close: Callable[[], None]
) -> Iterator[bytes]:
    """A response body's chunks; a failure while reading is StoreUnavailable, and the body is closed in the end."""
    try:
        yield from chunks
    except failures as exc:
        raise StoreUnavailable(f"Reading image data from {redact_url(url)} failed: {exc}.") from exc
    finally:
        close()
