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
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from requests.exceptions import RequestException
from swiftclient import client as swift
from swiftclient.exceptions import ClientException

from glimpse.errors import NotFound, StoreError
from glimpse.store.base import HashingMeter, StoredData
from glimpse.store.error_map import guarded_read
from glimpse.store.objects import MIB, READ_CHUNK, byte_range, missing_container, object_location
from glimpse.store.partials import node_tag, upload_tag
from glimpse.store.swift_segments import MAX_SEGMENTS, MeteredStream, Segments, SwiftErrors

log = logging.getLogger(__name__)

LOOKAHEAD = 16 * MIB  # read ahead, in memory, to tell a small image of unknown size from a large one


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
        self._segments = Segments(name, container, large_object_chunk_size, self.node)

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
        return object_location(url, self.schemes, "a swift", path_in_host=True)

    # --- writing -------------------------------------------------------------------------------
    def add(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        meter = HashingMeter(max_size, hash_algo)
        conn = self._connect()
        try:
            self._ensure_container(conn)
            stream = MeteredStream(iter(chunks), meter, expected_size)
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
            self._segments.upload(conn, image_id, stream, meter, expected_size)
            return meter.result(self.url_for(image_id))
        finally:
            self._done(conn)

    def _put_whole(self, conn: swift.Connection, obj: str, data: bytes, meter: HashingMeter) -> None:
        old = self._segments.in_use(conn, obj)
        with SwiftErrors(self._what(obj)):
            conn.put_object(
                self.container,
                obj,
                contents=data,
                content_length=len(data),
                etag=meter.md5.hexdigest(),
                content_type="application/octet-stream",
            )
        self._segments.delete(conn, old)

    def _put_streamed(
        self, conn: swift.Connection, obj: str, stream: MeteredStream, meter: HashingMeter, expected_size: int
    ) -> None:
        """One chunked PUT: Swift commits it at the end of the body only, which comes after the size check."""

        def body() -> Iterator[bytes]:
            while (chunk := stream.next_chunk()) is not None:
                yield chunk
            meter.check_expected(expected_size)

        old = self._segments.in_use(conn, obj)
        with SwiftErrors(self._what(obj)):
            etag = conn.put_object(self.container, obj, contents=body(), content_type="application/octet-stream")
        if etag != meter.md5.hexdigest():
            self._segments.delete(conn, [f"/{self.container}/{obj}"])
            raise StoreError(f"Swift stored {self._what(obj)} with ETag {etag}, not the MD5 sent; removed it.")
        self._segments.delete(conn, old)

    def _ensure_container(self, conn: swift.Connection) -> None:
        if self._container_ready:
            return
        try:
            with SwiftErrors(f"container {self.container}"):
                conn.head_container(self.container)
        except NotFound as exc:
            if not self.create_container_on_put:
                raise missing_container(
                    "Container", self.container, self.name, "swift_store_create_container_on_put"
                ) from exc
            with SwiftErrors(f"container {self.container}"):
                conn.put_container(self.container)
        self._container_ready = True

    # --- pieces (tus uploads) ----------------------------------------------------------------------
    # Each PATCH's bytes go up as segments `<image id>.tus-<upload id>/<tag>-<n>` of at most the large object chunk
    # size; the handle lists the committed ones, and the end publishes a static large object manifest of them all.
    def begin_pieces(self, image_id: str, upload_id: str) -> str:
        return json.dumps({"prefix": f"{image_id}.tus-{upload_id.replace('-', '')}", "segments": []})

    def append_piece(self, handle: str, chunks: Iterable[bytes]) -> str:
        state = json.loads(handle)
        written: list[dict[str, Any]] = []
        conn = self._connect()
        try:
            self._ensure_container(conn)
            stream = MeteredStream(iter(chunks), None, None)
            tag = upload_tag()
            while stream.has_more():
                name = f"{state['prefix']}/{tag}-{len(written) + 1:05d}"
                md5 = hashlib.md5(usedforsecurity=False)
                segment = {"path": f"/{self.container}/{name}", "etag": None, "size_bytes": 0}
                written.append(segment)
                with SwiftErrors(self._what(name)):
                    etag = conn.put_object(
                        self.container, name, contents=stream.take(self.chunk_size, md5, segment),
                        content_type="application/octet-stream",
                    )  # fmt: skip
                if etag != md5.hexdigest():
                    raise StoreError(f"Swift stored segment {name} with ETag {etag}, not the MD5 sent.")
                segment["etag"] = etag
        except BaseException:
            self._segments.delete(conn, [s["path"] for s in written])
            raise
        finally:
            self._done(conn)
        if not written:
            return handle
        if len(state["segments"]) + len(written) > MAX_SEGMENTS:
            self.drop_pieces(json.dumps({**state, "segments": written}))
            raise StoreError(f"Store {self.name}: the upload needs more than {MAX_SEGMENTS} segments; send larger "
                             "chunks or raise swift_store_large_object_chunk_size.")  # fmt: skip
        return json.dumps({**state, "segments": state["segments"] + written})

    def assemble(self, image_id: str, handles: Sequence[str]) -> str:
        states = [json.loads(h) for h in handles]
        segments = [s for state in states for s in state["segments"]]
        obj = states[0]["prefix"]
        if len(segments) > MAX_SEGMENTS:
            raise StoreError(f"Store {self.name}: the joined upload has more than {MAX_SEGMENTS} segments.")
        conn = self._connect()
        try:
            with SwiftErrors(self._what(obj)):
                manifest = {"contents": json.dumps(segments), "query_string": "multipart-manifest=put"}
                body = manifest if segments else {"contents": b""}  # no data at all: an empty object
                conn.put_object(self.container, obj, content_type="application/octet-stream", **body)
        finally:
            self._done(conn)
        return self.url_for(obj)

    def drop_pieces(self, handle: str, keep: str | None = None) -> None:
        state = json.loads(handle)
        conn = self._connect()
        try:
            if keep is not None:
                kept = {s["path"] for s in json.loads(keep)["segments"]}
                self._segments.delete(conn, [s["path"] for s in state["segments"] if s["path"] not in kept])
                return
            # The whole upload: segments of PATCHes that never committed too.
            listed = self._segments.names(conn, prefix=f"{state['prefix']}/")
            self._segments.delete(conn, [f"/{self.container}/{n}" for n in listed])
        finally:
            self._done(conn)

    # --- reading -------------------------------------------------------------------------------
    def get(self, url: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        container, obj = self._parse(url)
        if length == 0:
            return iter(())
        headers = {}
        if (wanted := byte_range(offset, length)) is not None:
            headers["Range"] = wanted
        conn = self._connect()
        try:
            with SwiftErrors(url):
                _, body = conn.get_object(container, obj, resp_chunk_size=READ_CHUNK, headers=headers)
        except BaseException:
            conn.close()
            raise

        def close() -> None:
            body.close()
            self._done(conn)

        return guarded_read(body, (RequestException, OSError, ClientException), url, close)

    def size(self, url: str) -> int:
        container, obj = self._parse(url)
        conn = self._connect()
        try:
            with SwiftErrors(url):
                return int(conn.head_object(container, obj)["content-length"])
        finally:
            self._done(conn)

    def delete(self, url: str) -> None:
        container, obj = self._parse(url)
        conn = self._connect()
        try:
            try:
                with SwiftErrors(url):
                    headers = conn.head_object(container, obj)
            except NotFound:
                return
            if headers.get("x-static-large-object", "").lower() == "true":
                try:
                    with SwiftErrors(url):
                        conn.delete_object(container, obj, query_string="multipart-manifest=delete")
                except NotFound:
                    pass
                return
            manifest = headers.get("x-object-manifest")
            if manifest:  # a dynamic large object, as Glance writes: segments first, then the manifest
                seg_container, _, prefix = manifest.partition("/")
                with SwiftErrors(url):
                    _, listing = conn.get_container(seg_container, prefix=prefix, full_listing=True)
                self._segments.delete(conn, [f"/{seg_container}/{o['name']}" for o in listing])
            try:
                with SwiftErrors(url):
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
        conn = self._connect()
        try:
            return self._segments.recover(conn, node)
        finally:
            self._done(conn)

    def discard_partial(self, image_id: str, node: str) -> None:
        conn = self._connect()
        try:
            self._segments.discard_partial(conn, image_id, node)
        finally:
            self._done(conn)

    def _what(self, obj: str) -> str:
        return self._segments.what(obj)
