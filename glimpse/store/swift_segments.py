"""The swift store's large objects: segments streamed up one by one, the static large object manifest
listing them, the segments a published image uses, and those a dead writer left (see swift.py).

Also the swift store's error mapping and the metered stream its writes pull data from.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from collections.abc import Iterator
from typing import Any

from requests.exceptions import RequestException
from swiftclient import client as swift
from swiftclient.exceptions import ClientException

from glimpse.errors import (
    BadRequest,
    GlimpseError,
    NotFound,
    StoreError,
    StoreFull,
    StoreUnavailable,
    TooLarge,
)
from glimpse.store.base import HashingMeter
from glimpse.store.error_map import ErrorMap
from glimpse.store.partials import node_segments_prefix, node_tag, segment_pattern, segment_prefix

log = logging.getLogger(__name__)

MAX_SEGMENTS = 1000  # Swift's default max_manifest_segments for static large objects


class Segments:
    """The segments of the images in one container, written by the node tagged `tag`."""

    def __init__(self, store: str, container: str, chunk_size: int, tag: str) -> None:
        self.store = store
        self.container = container
        self.chunk_size = chunk_size
        self.tag = tag

    def what(self, obj: str) -> str:
        return f"swift container {self.container} object {obj}"

    def upload(
        self, conn: swift.Connection, obj: str, stream: MeteredStream, meter: HashingMeter, expected_size: int | None
    ) -> None:
        """Stream the data up as segments and publish them by a manifest named `obj`; on any failure the
        segments written are removed and the object published before, if any, is left as it was."""
        prefix = segment_prefix(obj, self.tag)
        written: list[dict[str, Any]] = []
        try:
            while stream.has_more():
                if len(written) == MAX_SEGMENTS:
                    raise StoreError(
                        f"Store {self.store}: the image needs more than {MAX_SEGMENTS} segments; raise "
                        "swift_store_large_object_chunk_size."
                    )
                name = f"{prefix}{len(written) + 1:05d}"
                md5 = hashlib.md5(usedforsecurity=False)
                # Recorded before the PUT, so a failure while sending removes whatever Swift kept of it.
                segment = {"path": f"/{self.container}/{name}", "etag": None, "size_bytes": 0}
                written.append(segment)
                with SwiftErrors(self.what(name)):
                    etag = conn.put_object(
                        self.container,
                        name,
                        contents=stream.take(self.chunk_size, md5, segment),
                        content_type="application/octet-stream",
                    )
                if etag != md5.hexdigest():
                    raise StoreError(f"Swift stored segment {name} with ETag {etag}, not the MD5 sent.")
                segment["etag"] = etag
            meter.check_expected(expected_size)
            old = self.in_use(conn, obj)
            with SwiftErrors(self.what(obj)):
                conn.put_object(
                    self.container,
                    obj,
                    contents=json.dumps(written),
                    query_string="multipart-manifest=put",
                    content_type="application/octet-stream",
                )
        except BaseException:
            self.delete(conn, [s["path"] for s in written])
            raise
        self.delete(conn, [p for p in old if p not in {s["path"] for s in written}])

    def in_use(self, conn: swift.Connection, obj: str) -> list[str]:
        """`/container/name` of the segments the object published as `obj` uses now (none for a plain object)."""
        try:
            with SwiftErrors(self.what(obj)):
                if conn.head_object(self.container, obj).get("x-static-large-object", "").lower() != "true":
                    return []
                _, body = conn.get_object(self.container, obj, query_string="multipart-manifest=get&format=raw")
        except NotFound:
            return []
        try:
            return [str(s["path"]) for s in json.loads(body)]
        except (ValueError, KeyError, TypeError):
            log.warning("Store %s: the manifest of %s is not readable; its segments are kept.", self.store, obj)
            return []

    def delete(self, conn: swift.Connection, paths: list[str]) -> None:
        """Delete the objects at `/container/name` paths; failures are logged, never raised."""
        for path in paths:
            container, _, name = path.lstrip("/").partition("/")
            try:
                with SwiftErrors(path):
                    conn.delete_object(container, name)
            except NotFound:
                pass
            except (StoreError, StoreUnavailable):
                log.exception("Store %s: could not delete segment %s", self.store, path)

    # --- partial data of dead writers ----------------------------------------------------------
    def recover(self, conn: swift.Connection, node: str) -> int:
        """Remove the segments of every upload the writer `node` left unfinished; returns how many uploads."""
        pattern = segment_pattern(node_tag(node))
        by_image: dict[str, list[str]] = {}
        for name in self.names(conn, prefix=None):
            match = pattern.match(name)
            if match:
                by_image.setdefault(match["image"], []).append(name)
        return sum(self._discard(conn, image, names) for image, names in by_image.items())

    def discard_partial(self, conn: swift.Connection, image_id: str, node: str) -> None:
        self._discard(conn, image_id, self.names(conn, prefix=node_segments_prefix(image_id, node_tag(node))))

    def _discard(self, conn: swift.Connection, image_id: str, names: list[str]) -> int:
        """Delete the segments among `names` that the published object of image_id does not use."""
        if not names:
            return 0
        live = set(self.in_use(conn, image_id))
        orphans = [f"/{self.container}/{n}" for n in names if f"/{self.container}/{n}" not in live]
        self.delete(conn, orphans)
        return len({p.rsplit("-", 1)[0] for p in orphans})

    def names(self, conn: swift.Connection, prefix: str | None) -> list[str]:
        try:
            with SwiftErrors(f"container {self.container}"):
                _, listing = conn.get_container(self.container, prefix=prefix, full_listing=True)
        except NotFound:
            return []
        return [o["name"] for o in listing]


class MeteredStream:
    """The image's chunks, metered (hashed, counted, capped) as they are pulled, with one-chunk push-back."""

    def __init__(self, source: Iterator[bytes], meter: HashingMeter | None, expected_size: int | None) -> None:
        self._source = source
        self._meter = meter
        self._expected = expected_size
        self._pending: deque[bytes] = deque()

    def next_chunk(self) -> bytes | None:
        if self._pending:
            return self._pending.popleft()
        for chunk in self._source:
            if not chunk:
                continue
            if self._meter is None:  # a tus piece: its bytes are counted and hashed where the upload is read back
                return bytes(chunk)
            self._meter.update(chunk)
            if self._expected is not None and self._meter.size > self._expected:
                raise BadRequest(f"Image size exceeds the expected size {self._expected}.")
            return bytes(chunk)
        return None

    def push_back(self, chunk: bytes) -> None:
        self._pending.appendleft(chunk)

    def has_more(self) -> bool:
        chunk = self.next_chunk()
        if chunk is None:
            return False
        self.push_back(chunk)
        return True

    def take(self, limit: int, md5: Any, segment: dict[str, Any]) -> Iterator[bytes]:
        """Up to `limit` bytes, splitting the chunk that crosses the limit."""
        sent = 0
        while sent < limit and (chunk := self.next_chunk()) is not None:
            if sent + len(chunk) > limit:
                chunk, rest = chunk[: limit - sent], chunk[limit - sent :]
                self.push_back(rest)
            sent += len(chunk)
            segment["size_bytes"] = sent
            md5.update(chunk)
            yield chunk


class SwiftErrors(ErrorMap):
    """Turns swiftclient errors into the store errors the domain understands."""

    def translate(self, exc: BaseException) -> GlimpseError | None:
        if isinstance(exc, ClientException):
            status = exc.http_status
            if status == 404:
                return NotFound(f"Image data at {self.what} is missing.")
            if status == 507:
                return StoreFull("Swift has no space left for the image data.")
            if status == 413:
                return TooLarge(f"Swift refused {self.what} as too large: {exc.http_reason}.")
            if status is None or status >= 500 or status == 401:
                reason = str(exc.msg) if status is None else f"{status} {exc.http_reason}"
                return StoreUnavailable(f"Swift could not serve {self.what}: {reason}.")
            return StoreError(f"Swift refused an operation on {self.what}: {status} {exc.http_reason}.")
        if isinstance(exc, RequestException | OSError):
            return StoreUnavailable(f"Swift could not be reached for {self.what}: {exc}.")
        return None
