"""The swift store: one object per image in a container of an OpenStack Swift account, through
python-swiftclient, with Glance's option names.

Writes never hold the image in memory and never publish partial data:
- an image whose size is announced and at most swift_store_large_object_size streams up in one chunked
  PUT; Swift commits an object only when its body ends, so a failure (the size cap included) leaves the
  old object, if any, as it was;
- otherwise up to 16 MiB are read ahead: an image that ends there (and within large_object_size) goes
  up in one PUT with its MD5 as ETag; a longer one streams as segments of
  swift_store_large_object_chunk_size (each a chunked PUT, its ETag checked against the MD5 computed on
  the way) and is published by a static large object manifest (SLO) under the image's name. Glance writes
  a dynamic large object (X-Object-Manifest) instead; an SLO lists its segments with their ETags and sizes,
  so a reader gets exactly the segments written or an error, never a short image from a stale container
  listing. Glance and any Swift client read both kinds the same way.
- Segments are named `<image id>-<node tag>-<upload tag>-<nnnnn>` in the image container (as Glance keeps
  its segments beside the manifest): a failed upload deletes its segments; a crashed writer's are found by
  discard_partial / recover through that prefix; replacing a segmented image deletes the old segments.

Deleting an image removes its segments too, for SLOs (multipart-manifest=delete) and for Glance's DLOs
(the X-Object-Manifest prefix). Reads pass offset/length as a Range header, which Swift honours across
segments.

Locations look like Glance's, without the credentials Glance embeds in them:
`swift+http://127.0.0.1:8080/auth/v1.0/<container>/<image id>` (`swift+https://` for https, and Glance's
`swift://`, `swift+config://` and `user:key@` forms are read too). The store's own credentials and
account are used for every location it reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from requests.exceptions import RequestException
from swiftclient import client as swift
from swiftclient.exceptions import ClientException

from glimpse.errors import BadRequest, NotFound, StoreError, StoreFull, StoreUnavailable, TooLarge
from glimpse.logsafe import redact_url
from glimpse.store.base import HashingMeter, StoredData
from glimpse.store.filesystem import node_tag

log = logging.getLogger(__name__)

MIB = 1024 * 1024
READ_CHUNK = MIB
LOOKAHEAD = 16 * MIB  # read ahead, in memory, to tell a small image of unknown size from a large one
MAX_SEGMENTS = 1000  # Swift's default max_manifest_segments for static large objects


class SwiftStore:
    type = "swift"
    schemes = ("swift", "swift+http", "swift+https", "swift+config")
    read_only = False

    def __init__(
        self,
        name: str,
        *,
        node: str,
        auth_address: str,
        user: str,
        key: str,
        container: str,
        auth_version: str = "1",
        create_container_on_put: bool = False,
        large_object_size: int = 5120 * MIB,
        large_object_chunk_size: int = 200 * MIB,
        region: str | None = None,
        endpoint_type: str = "publicURL",
        service_type: str = "object-store",
        endpoint: str | None = None,
        insecure: bool = False,
        cacert: str | None = None,
        retries: int = 3,
        timeout: float = 60.0,
    ) -> None:
        if auth_version not in ("1", "2", "3"):
            raise StoreError(f"Store {name}: swift_store_auth_version must be 1, 2 or 3.")
        if large_object_chunk_size < 1 or large_object_size < 1:
            raise StoreError(f"Store {name}: the swift large object sizes must be at least 1 (MiB).")
        self.name = name
        self.node = node_tag(node)
        self.auth_address = auth_address
        self.auth_version = auth_version
        self.container = container
        self.create_container_on_put = create_container_on_put
        self.large_object_size = large_object_size
        self.chunk_size = large_object_chunk_size
        self.region = region
        self.endpoint_type = endpoint_type
        self.service_type = service_type
        self.endpoint = endpoint
        scheme, _, rest = auth_address.partition("://")
        self.location_scheme = "swift+http" if scheme == "http" else "swift+https"
        self.location_prefix = f"{self.location_scheme}://{rest.rstrip('/')}"
        self._user, self._key = user, key
        self._os_options: dict[str, str] = {"endpoint_type": endpoint_type, "service_type": service_type}
        if region:
            self._os_options["region_name"] = region
        if endpoint:
            self._os_options["object_storage_url"] = endpoint
        if auth_version in ("2", "3"):
            # Glance's swift_store_user is `project:user` for Keystone.
            project, sep, login = user.partition(":")
            if not sep:
                raise StoreError(f"Store {name}: with Keystone, swift_store_user is 'project:user'.")
            self._user = login
            self._os_options.update(tenant_name=project, project_name=project)
            if auth_version == "3":
                self._os_options.update(user_domain_id="default", project_domain_id="default")
        self._tls = {"insecure": insecure, "cacert": cacert}
        self._retries = retries
        self._timeout = timeout
        # One token for every connection of this store: a connection per operation (swiftclient's are not
        # thread-safe) starts with it, and a connection that had to authenticate again shares its new one.
        self._auth_lock = threading.Lock()
        self._auth: tuple[str, str] | None = None
        self._container_ready = False

    # --- connections ---------------------------------------------------------------------------
    def _connect(self) -> swift.Connection:
        url, token = self._auth or (None, None)
        return swift.Connection(
            authurl=self.auth_address,
            user=self._user,
            key=self._key,
            auth_version=self.auth_version,
            os_options=dict(self._os_options),
            preauthurl=url,
            preauthtoken=token,
            retries=self._retries,
            starting_backoff=0.5,
            max_backoff=4,
            timeout=self._timeout,
            retry_on_ratelimit=True,
            **self._tls,
        )

    def _done(self, conn: swift.Connection) -> None:
        if conn.url and conn.token and (conn.url, conn.token) != self._auth:
            with self._auth_lock:
                self._auth = (conn.url, conn.token)
        conn.close()

    # --- locations -----------------------------------------------------------------------------
    def url_for(self, obj: str) -> str:
        return f"{self.location_prefix}/{self.container}/{obj}"

    def _parse(self, url: str) -> tuple[str, str]:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in self.schemes:
            raise StoreError(f"Location {redact_url(url)} is not a swift location.")
        rest = rest.rsplit("@", 1)[-1]  # Glance's locations carry user:key@
        parts = rest.rsplit("/", 2)
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise StoreError(f"Location {redact_url(url)} does not name a container and an object.")
        return parts[1], parts[2]

    # --- writing -------------------------------------------------------------------------------
    def add(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        meter = HashingMeter(max_size, hash_algo)
        conn = self._connect()
        try:
            self._ensure_container(conn)
            stream = _Stream(iter(chunks), meter, expected_size)
            if expected_size is not None and expected_size <= self.large_object_size:
                self._put_streamed(conn, image_id, stream, meter, expected_size)
                return meter.result(self.url_for(image_id))
            limit = min(self.large_object_size, LOOKAHEAD)
            ahead: list[bytes] = []
            buffered = 0
            while buffered <= limit:
                chunk = stream.next_chunk()
                if chunk is None:
                    meter.check_expected(expected_size)
                    self._put_whole(conn, image_id, b"".join(ahead), meter)
                    return meter.result(self.url_for(image_id))
                ahead.append(chunk)
                buffered += len(chunk)
            for chunk in reversed(ahead):
                stream.push_back(chunk)
            del ahead
            self._put_segmented(conn, image_id, stream, meter, expected_size)
            return meter.result(self.url_for(image_id))
        finally:
            self._done(conn)

    def _put_whole(self, conn: swift.Connection, obj: str, data: bytes, meter: HashingMeter) -> None:
        old = self._old_segments(conn, obj)
        with _errors(self._what(obj)):
            conn.put_object(
                self.container,
                obj,
                contents=data,
                content_length=len(data),
                etag=meter.md5.hexdigest(),
                content_type="application/octet-stream",
            )
        self._delete_segments(conn, old)

    def _put_streamed(
        self, conn: swift.Connection, obj: str, stream: _Stream, meter: HashingMeter, expected_size: int
    ) -> None:
        """One chunked PUT: Swift commits it at the end of the body only, which comes after the size check."""

        def body() -> Iterator[bytes]:
            while (chunk := stream.next_chunk()) is not None:
                yield chunk
            meter.check_expected(expected_size)

        old = self._old_segments(conn, obj)
        with _errors(self._what(obj)):
            etag = conn.put_object(self.container, obj, contents=body(), content_type="application/octet-stream")
        if etag != meter.md5.hexdigest():
            self._delete_quietly(conn, obj)
            raise StoreError(f"Swift stored {self._what(obj)} with ETag {etag}, not the MD5 sent; removed it.")
        self._delete_segments(conn, old)

    def _put_segmented(
        self, conn: swift.Connection, obj: str, stream: _Stream, meter: HashingMeter, expected_size: int | None
    ) -> None:
        prefix = f"{obj}-{self.node}-{uuid.uuid4().hex[:8]}-"
        written: list[dict[str, Any]] = []
        try:
            while stream.has_more():
                if len(written) == MAX_SEGMENTS:
                    raise StoreError(
                        f"Store {self.name}: the image needs more than {MAX_SEGMENTS} segments; raise "
                        "swift_store_large_object_chunk_size."
                    )
                name = f"{prefix}{len(written) + 1:05d}"
                md5 = hashlib.md5(usedforsecurity=False)
                # Recorded before the PUT, so a failure while sending removes whatever Swift kept of it.
                segment = {"path": f"/{self.container}/{name}", "etag": None, "size_bytes": 0}
                written.append(segment)
                with _errors(self._what(name)):
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
            old = self._old_segments(conn, obj)
            with _errors(self._what(obj)):
                conn.put_object(
                    self.container,
                    obj,
                    contents=json.dumps(written),
                    query_string="multipart-manifest=put",
                    content_type="application/octet-stream",
                )
        except BaseException:
            self._delete_segments(conn, [s["path"] for s in written])
            raise
        self._delete_segments(conn, [p for p in old if p not in {s["path"] for s in written}])

    def _ensure_container(self, conn: swift.Connection) -> None:
        if self._container_ready:
            return
        try:
            with _errors(f"container {self.container}"):
                conn.head_container(self.container)
        except NotFound as exc:
            if not self.create_container_on_put:
                raise StoreError(
                    f"Container {self.container} of store {self.name} does not exist; create it or set "
                    "swift_store_create_container_on_put = true."
                ) from exc
            with _errors(f"container {self.container}"):
                conn.put_container(self.container)
        self._container_ready = True

    # --- reading -------------------------------------------------------------------------------
    def get(self, url: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        container, obj = self._parse(url)
        if length == 0:
            return iter(())
        headers = {}
        if offset or length is not None:
            headers["Range"] = f"bytes={offset}-{'' if length is None else offset + length - 1}"
        conn = self._connect()
        try:
            with _errors(url):
                _, body = conn.get_object(container, obj, resp_chunk_size=READ_CHUNK, headers=headers)
        except BaseException:
            conn.close()
            raise
        return _read(body, conn, self, url)

    def size(self, url: str) -> int:
        container, obj = self._parse(url)
        conn = self._connect()
        try:
            with _errors(url):
                return int(conn.head_object(container, obj)["content-length"])
        finally:
            self._done(conn)

    def delete(self, url: str) -> None:
        container, obj = self._parse(url)
        conn = self._connect()
        try:
            try:
                with _errors(url):
                    headers = conn.head_object(container, obj)
            except NotFound:
                return
            if headers.get("x-static-large-object", "").lower() == "true":
                try:
                    with _errors(url):
                        conn.delete_object(container, obj, query_string="multipart-manifest=delete")
                except NotFound:
                    pass
                return
            manifest = headers.get("x-object-manifest")
            if manifest:  # a dynamic large object, as Glance writes: segments first, then the manifest
                seg_container, _, prefix = manifest.partition("/")
                with _errors(url):
                    _, listing = conn.get_container(seg_container, prefix=prefix, full_listing=True)
                self._delete_segments(conn, [f"/{seg_container}/{o['name']}" for o in listing])
            try:
                with _errors(url):
                    conn.delete_object(container, obj)
            except NotFound:
                pass
        finally:
            self._done(conn)

    def properties(self) -> dict[str, object]:
        return {
            "auth_address": self.auth_address,
            "auth_version": self.auth_version,
            "container": self.container,
            "region": self.region or "",
            "endpoint_type": self.endpoint_type,
            "service_type": self.service_type,
            "large_object_size": self.large_object_size,
            "large_object_chunk_size": self.chunk_size,
        }

    # --- partial data of dead writers ----------------------------------------------------------
    def recover(self, node: str) -> int:
        """Remove the segments of every upload the writer `node` left unfinished; returns how many uploads."""
        pattern = re.compile(rf"^(?P<image>.+)-{node_tag(node)}-(?P<upload>[0-9a-f]{{8}})-\d{{5}}$")
        conn = self._connect()
        try:
            by_image: dict[str, list[str]] = {}
            for name in self._names(conn, prefix=None):
                match = pattern.match(name)
                if match:
                    by_image.setdefault(match["image"], []).append(name)
            removed = 0
            for image, names in by_image.items():
                removed += self._discard(conn, image, names)
            return removed
        finally:
            self._done(conn)

    def discard_partial(self, image_id: str, node: str) -> None:
        conn = self._connect()
        try:
            self._discard(conn, image_id, self._names(conn, prefix=f"{image_id}-{node_tag(node)}-"))
        finally:
            self._done(conn)

    def _discard(self, conn: swift.Connection, image_id: str, names: list[str]) -> int:
        """Delete the segments among `names` that the published object of image_id does not use."""
        if not names:
            return 0
        live = set(self._old_segments(conn, image_id))
        orphans = [f"/{self.container}/{n}" for n in names if f"/{self.container}/{n}" not in live]
        self._delete_segments(conn, orphans)
        return len({p.rsplit("-", 1)[0] for p in orphans})

    # --- helpers -------------------------------------------------------------------------------
    def _what(self, obj: str) -> str:
        return f"swift container {self.container} object {obj}"

    def _names(self, conn: swift.Connection, prefix: str | None) -> list[str]:
        try:
            with _errors(f"container {self.container}"):
                _, listing = conn.get_container(self.container, prefix=prefix, full_listing=True)
        except NotFound:
            return []
        return [o["name"] for o in listing]

    def _old_segments(self, conn: swift.Connection, obj: str) -> list[str]:
        """`/container/name` of the segments the object published as `obj` uses now (none for a plain object)."""
        try:
            with _errors(self._what(obj)):
                if conn.head_object(self.container, obj).get("x-static-large-object", "").lower() != "true":
                    return []
                _, body = conn.get_object(self.container, obj, query_string="multipart-manifest=get&format=raw")
        except NotFound:
            return []
        try:
            return [str(s["path"]) for s in json.loads(body)]
        except (ValueError, KeyError, TypeError):
            log.warning("Store %s: the manifest of %s is not readable; its segments are kept.", self.name, obj)
            return []

    def _delete_segments(self, conn: swift.Connection, paths: list[str]) -> None:
        for path in paths:
            container, _, name = path.lstrip("/").partition("/")
            try:
                with _errors(path):
                    conn.delete_object(container, name)
            except NotFound:
                pass
            except (StoreError, StoreUnavailable):
                log.exception("Store %s: could not delete segment %s", self.name, path)

    def _delete_quietly(self, conn: swift.Connection, obj: str) -> None:
        self._delete_segments(conn, [f"/{self.container}/{obj}"])


class _Stream:
    """The image's chunks, metered (hashed, counted, capped) as they are pulled, with one-chunk push-back."""

    def __init__(self, source: Iterator[bytes], meter: HashingMeter, expected_size: int | None) -> None:
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


class _errors:
    """Turns swiftclient errors into the store errors the domain understands."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if isinstance(exc, ClientException):
            status = exc.http_status
            if status == 404:
                raise NotFound(f"Image data at {self.what} is missing.") from exc
            if status == 507:
                raise StoreFull("Swift has no space left for the image data.") from exc
            if status == 413:
                raise TooLarge(f"Swift refused {self.what} as too large: {exc.http_reason}.") from exc
            if status is None or status >= 500 or status == 401:
                raise StoreUnavailable(f"Swift could not serve {self.what}: {_reason(exc)}.") from exc
            raise StoreError(f"Swift refused an operation on {self.what}: {status} {exc.http_reason}.") from exc
        if isinstance(exc, RequestException | OSError):
            raise StoreUnavailable(f"Swift could not be reached for {self.what}: {exc}.") from exc
        return False


def _reason(exc: ClientException) -> str:
    if exc.http_status is None:
        return str(exc.msg)
    return f"{exc.http_status} {exc.http_reason}"


def _read(body: Any, conn: swift.Connection, store: SwiftStore, url: str) -> Iterator[bytes]:
    try:
        yield from body
    except (RequestException, OSError, ClientException) as exc:
        raise StoreUnavailable(f"Reading image data from {redact_url(url)} failed: {exc}.") from exc
    finally:
        body.close()
        store._done(conn)
