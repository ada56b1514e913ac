"""What the object-store drivers (s3, swift) and rbd share: locations, ranges, and data cut into blocks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from glimpse.errors import StoreError
from glimpse.logsafe import redact_url
from glimpse.store.base import HashingMeter

MIB = 1024 * 1024
READ_CHUNK = MIB


def object_location(url: str, schemes: tuple[str, ...], kind: str, *, path_in_host: bool) -> tuple[str, str]:
    """(container, object) of an object-store location `<scheme>://[credentials@]<host>/<container>/<object>`.

    Glance's locations may carry credentials before the host: they are dropped, the store's own are used.
    With path_in_host (swift), the host part is an auth URL with a path of its own, so the container and
    object are the last two parts; otherwise (s3) the first part after the host is the container and the
    object is all the rest."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in schemes:
        raise StoreError(f"Location {redact_url(url)} is not {kind} location.")
    rest = rest.rsplit("@", 1)[-1]
    parts = rest.rsplit("/", 2) if path_in_host else rest.split("/", 2)
    if len(parts) != 3 or not parts[1] or not parts[2]:
        what = "a container" if path_in_host else "a bucket"
        raise StoreError(f"Location {redact_url(url)} does not name {what} and an object.")
    return parts[1], parts[2]


def byte_range(offset: int, length: int | None) -> str | None:
    """The HTTP Range header value for `length` bytes (all remaining when None) from offset; None for all."""
    if not offset and length is None:
        return None
    return f"bytes={offset}-{'' if length is None else offset + length - 1}"


def metered(chunks: Iterable[bytes], meter: HashingMeter) -> Iterator[bytes]:
    """The chunks, each hashed, counted and capped by the meter as it passes."""
    for chunk in chunks:
        meter.update(chunk)
        yield chunk


def fixed_blocks(chunks: Iterable[bytes], size: int, before_last: Callable[[], None]) -> Iterator[bytes]:
    """The data as blocks of exactly `size` bytes, the last one shorter.

    before_last runs once the data has ended, before the last (short) block is given, so a size check
    there stops a short or long upload before it is completed."""
    buffer = bytearray()
    for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    before_last()
    if buffer:
        yield bytes(buffer)


def missing_container(kind: str, name: str, store: str, option: str) -> StoreError:
    return StoreError(f"{kind} {name} of store {store} does not exist; create it or set {option} = true.")
