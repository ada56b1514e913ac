"""The vmware store: one file per image in a folder (vmware_store_image_dir) of vSphere datastores, as
Glance's VMware datastore store keeps them, with Glance's option names and `vsphere://` locations.

The vSphere API (vmware_api.py) logs in, finds the datacenters and datastores, moves, lists and deletes
files; the data itself streams over the datastore's HTTP file interface (`/folder/...?dcPath=&dsName=`,
https, the API session's cookie):
- an upload is one chunked PUT of unknown length to `<image id>.<node tag>.<upload tag>.partial` beside its
  final name, its size then checked on the server, and a move to the final name publishes it; Glance PUTs to
  the final name directly, so a failed or interrupted upload there leaves a short image readable under it;
- the datastore is the heaviest of vmware_datastores with room for the announced size (most free space among
  equals), as Glance chooses;
- a failed upload deletes its partial file; a dead writer's are found by their node tag (recover,
  discard_partial) in every configured datastore;
- reads pass offset/length as a Range header.

The location's host is not used to connect: every location is read on the store's own server with its own
session, so a location naming another host never receives the session cookie. Deleting only removes files in
the image folder, never a file a location points at elsewhere in a datastore (a virtual machine's disk).
"""

from __future__ import annotations

import logging
import posixpath
import ssl
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Any

import httpx
from pyVmomi import vim

from glimpse.errors import NotFound, StoreError, StoreFull, StoreUnavailable
from glimpse.logsafe import redact_url
from glimpse.store.base import HashingMeter, StoredData
from glimpse.store.error_map import guarded_read
from glimpse.store.objects import READ_CHUNK, byte_range, metered
from glimpse.store.partials import is_partial, node_tag, partial_name, partial_pattern
from glimpse.store.vmware_api import VsphereApi, manager, search_spec
from glimpse.store.vmware_locations import Datastore, DatastoreFile, Server, parse_location

log = logging.getLogger(__name__)


def _first_drawn(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks with the first one already taken: a source failing before its first byte fails here, before
    any PUT. The datastore may create the file of a PUT aborted at once only after our delete of it has run."""
    first = next(chunks, None)
    return iter(()) if first is None else chain((first,), chunks)


class VmwareStore:
    type = "vmware"
    schemes = ("vsphere",)
    read_only = False

    def __init__(
        self,
        name: str,
        *,
        node: str,
        server: Server,
        username: str,
        password: str,
        datastores: list[Datastore],
        image_dir: str,
        tls: ssl.SSLContext,
        retries: int = 10,
        poll_interval: float = 5.0,
        timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.node = node_tag(node)
        self.server = server
        self.datastores = datastores
        self.image_dir = image_dir
        self.retries = retries
        self.api = VsphereApi(
            name, server, username, password, tls, retries=retries, poll_interval=poll_interval, timeout=timeout
        )
        self._http = httpx.Client(verify=tls, timeout=httpx.Timeout(timeout), follow_redirects=False)
        self._folders_ready: set[tuple[str, str]] = set()

    # --- locations -----------------------------------------------------------------------------
    def _file(self, ds: Datastore, name: str) -> DatastoreFile:
        return DatastoreFile(ds.datacenter, ds.name, f"{self.image_dir}/{name}")

    def url_for(self, image_id: str) -> str:
        return self._file(self._heaviest(), image_id).location(self.server)

    def _heaviest(self) -> Datastore:
        return max(self.datastores, key=lambda d: d.weight)

    # --- writing -------------------------------------------------------------------------------
    def add(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        ds = self._choose(expected_size or 0)
        self._ensure_folder(ds)
        final = self._file(ds, image_id)
        partial = self._file(ds, partial_name(image_id, self.node))
        meter = HashingMeter(max_size, hash_algo)
        try:
            self._put(partial, _first_drawn(metered(chunks, meter)))
            meter.check_expected(expected_size)
            stored = self._size(partial)
            if stored != meter.size:
                raise StoreError(f"Store {self.name}: the datastore kept {stored} of the {meter.size} bytes sent.")
            self.api.run_task(
                final.ds_path,
                lambda c: manager(c.fileManager).MoveFile(
                    partial.ds_path,
                    self.api.datacenter(c, ds.datacenter),
                    final.ds_path,
                    self.api.datacenter(c, ds.datacenter),
                    True,
                ),
            )
        except BaseException:
            self._remove(partial)
            raise
        return meter.result(final.location(self.server))

    def _choose(self, size: int) -> Datastore:
        """The heaviest datastore with room for `size` bytes; the one with most free space among equals."""
        free = self.api.call(
            "the datastores' free space",
            lambda c: {d: int(self.api.datastore(c, d.datacenter, d.name).summary.freeSpace) for d in self.datastores},
        )
        for weight in sorted({d.weight for d in self.datastores}, reverse=True):
            best = max((d for d in self.datastores if d.weight == weight), key=lambda d: free[d])
            if free[best] >= size:
                return best
        raise StoreFull(f"No datastore of store {self.name} has room for {size} bytes.")

    def _ensure_folder(self, ds: Datastore) -> None:
        if (ds.datacenter, ds.name) in self._folders_ready:
            return

        def make(c: vim.ServiceInstanceContent) -> None:
            try:
                manager(c.fileManager).MakeDirectory(
                    f"[{ds.name}] {self.image_dir}", self.api.datacenter(c, ds.datacenter), True
                )
            except vim.fault.FileAlreadyExists:
                pass

        self.api.call(f"[{ds.name}] {self.image_dir}", make)
        self._folders_ready.add((ds.datacenter, ds.name))

    def _put(self, target: DatastoreFile, body: Iterator[bytes]) -> None:
        """One chunked PUT; the session is checked first, since the body cannot be sent twice."""
        self.api.check_session()
        cookie, _ = self.api.cookie()
        url = target.transfer_url(self.server)
        try:
            response = self._http.put(
                url,
                content=body,
                headers={"Cookie": cookie, "Content-Type": "application/octet-stream"},
            )
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"Writing image data to {target.ds_path} failed: {exc}.") from exc
        if response.status_code == 507:
            raise StoreFull("Image storage media is full.")
        if response.status_code not in (200, 201):
            raise StoreError(f"The datastore refused the image data for {target.ds_path}: HTTP {response.status_code}.")

    # --- reading -------------------------------------------------------------------------------
    def _request(self, method: str, where: DatastoreFile, headers: dict[str, str]) -> httpx.Response:
        """A GET or HEAD on the datastore's HTTP file interface: logs in again after a 401, retries connection
        errors; NotFound for 404. A GET's response is left open for its body to be streamed."""
        attempt = 0
        relogged = False
        url = where.transfer_url(self.server)
        while True:
            cookie, generation = self.api.cookie()
            request = self._http.build_request(method, url, headers={**headers, "Cookie": cookie})
            try:
                response = self._http.send(request, stream=True)
            except httpx.TransportError as exc:
                attempt += 1
                if attempt > self.retries:
                    raise StoreUnavailable(f"Reading image data from {where.ds_path} failed: {exc}.") from exc
                continue
            if response.status_code == 401 and not relogged:
                response.close()
                relogged = True
                self.api.expired(generation)
                continue
            if response.status_code == 404:
                response.close()
                raise NotFound(f"Image data at {where.ds_path} is missing.")
            if response.status_code not in (200, 206):
                response.close()
                raise StoreError(f"The datastore answered HTTP {response.status_code} for {where.ds_path}.")
            return response

    def get(self, url: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        where = parse_location(url)
        if length == 0:
            return iter(())
        headers = {}
        if (wanted := byte_range(offset, length)) is not None:
            headers["Range"] = wanted
        response = self._request("GET", where, headers)
        if wanted is not None and response.status_code != 206:
            response.close()
            if offset >= self._size(where):
                return iter(())
            raise StoreError(f"The datastore ignored the byte range asked of {where.ds_path}.")
        return guarded_read(response.iter_bytes(READ_CHUNK), (httpx.HTTPError,), url, response.close)

    def size(self, url: str) -> int:
        return self._size(parse_location(url))

    def _size(self, where: DatastoreFile) -> int:
        response = self._request("HEAD", where, {})
        response.close()
        length = response.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise StoreError(f"The datastore gave no size for {where.ds_path}.")
        return int(length)

    # --- deleting ------------------------------------------------------------------------------
    def delete(self, url: str) -> None:
        where = parse_location(url)
        if posixpath.dirname(where.path) != self.image_dir:
            raise StoreError(
                f"Store {self.name} deletes only files in its folder {self.image_dir}, not {redact_url(url)}."
            )
        self._remove(where)

    def _remove(self, where: DatastoreFile) -> None:
        """Delete one file; one already gone is no error."""
        try:
            self.api.run_task(
                where.ds_path,
                lambda c: manager(c.fileManager).DeleteFile(where.ds_path, self.api.datacenter(c, where.datacenter)),
            )
        except NotFound:
            pass

    # --- partial data of dead writers ----------------------------------------------------------
    def recover(self, node: str) -> int:
        """Remove every partial file the writer `node` left in the configured datastores.

        Called at start-up: a vCenter that is down then is logged, not fatal (the service starts and this
        store answers 503); the files stay until the next recovery."""
        tag = node_tag(node)
        removed = 0
        try:
            for ds in self.datastores:
                for name in self._list(ds, partial_pattern(tag)):
                    if is_partial(name, tag):
                        self._remove(self._file(ds, name))
                        removed += 1
        except StoreUnavailable as exc:
            log.warning("Store %s: partial uploads not looked for: %s", self.name, exc.message)
        return removed

    def discard_partial(self, image_id: str, node: str) -> None:
        tag = node_tag(node)
        for ds in self.datastores:
            for name in self._list(ds, partial_pattern(tag, image_id)):
                if is_partial(name, tag, image_id):
                    self._remove(self._file(ds, name))

    def _list(self, ds: Datastore, pattern: str) -> list[str]:
        """Names of the files of the image folder of `ds` matching a glob (none when the folder is missing)."""
        folder = f"[{ds.name}] {self.image_dir}"
        spec = search_spec(pattern)

        def search(c: vim.ServiceInstanceContent) -> Any:
            return self.api.datastore(c, ds.datacenter, ds.name).browser.Search(folder, spec)

        try:
            found = self.api.run_task(folder, search)
        except NotFound:
            return []
        return [f.path for f in (found.file if found is not None else [])]

    def properties(self) -> dict[str, object]:
        return {
            "server": self.server.netloc,
            "datastores": ", ".join(f"{d.datacenter}:{d.name}:{d.weight}" for d in self.datastores),
            "image_dir": f"/{self.image_dir}",
        }
