"""The rbd store: one RBD image per Glance image in a Ceph pool, through Ceph's python bindings
(Debian's python3-rados and python3-rbd; they are not on PyPI and are imported only when an rbd store
is configured).

The layout is Glance's, so Nova and Cinder on the same cluster clone from it copy-on-write: the image
is named by the image id, in format 2 with the layering feature (or the cluster's
rbd_default_features), with objects of rbd_store_chunk_size, and carries a protected snapshot named
`snap`. Its location is `rbd://<fsid>/<pool>/<image>/snap` (each part URL-quoted); Glance's older
one-part locations, `rbd://<image>`, are read from the store's pool.

Writing: the data goes into an image of a temporary name, `<image id>.<node tag>.<random>.partial`,
created at the announced size (or empty) and grown as data streams in, written in
rbd_store_chunk_size pieces, a few asynchronous writes in flight while the next pieces arrive
(all-zero pieces are skipped with rbd_thin_provisioning); once complete
and of the expected size it is shrunk to the exact size, snapshotted, the snapshot protected, and the
image renamed to the image id. Any failure removes the temporary image, so a failed upload leaves
nothing and a failed replacement keeps the old data; `recover` and `discard_partial` remove the
temporary images a dead writer left, recognised by its node tag.

Deleting unprotects and removes the snapshot, then the image. An image that Nova or Cinder cloned
(children of its snapshot) or that a client still has open cannot be deleted: the driver says so
(StoreError, "in use") and leaves it whole.

One cluster connection (librados is thread-safe) is opened on first use in each process, so a handle
is never carried across the fork of the server's worker processes; rados_connect_timeout bounds that
first connection (as client_mount_timeout, which librados obeys; the bindings ignore the timeout argument
Glance passes); 0 keeps librados' own default of 300 s.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
import urllib.parse
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from glimpse.errors import NotFound, StoreError, StoreUnavailable
from glimpse.store.base import HashingMeter, StoredData
from glimpse.store.objects import MIB, fixed_blocks, metered
from glimpse.store.partials import is_partial, node_tag, partial_name
from glimpse.store.rbd_cluster import CephConnection, ImageInUse, RbdErrors, bindings, reason

log = logging.getLogger(__name__)

SNAPSHOT = "snap"  # Glance's DEFAULT_SNAPNAME
MAX_GROW = 8 * 1024 * MIB  # grow a streaming image by at most this much at a time, as Glance does
# A writer killed mid-upload keeps its watch on the partial image until the OSDs time it out
# (osd_client_watch_timeout, 30 s by default); removing the image fails until then.
STALE_WATCH_WAIT = 45.0
IN_FLIGHT = 4  # chunks being written at once


def _ignore(completion: Any) -> None:
    return None


class RbdStore:
    type = "rbd"
    schemes = ("rbd",)
    read_only = False

    def __init__(
        self,
        name: str,
        *,
        pool: str = "images",
        user: str | None = None,
        conf_file: str | None = None,
        chunk_size: int = 8 * MIB,
        connect_timeout: int = 0,
        thin_provisioning: bool = False,
        node: str = "",
    ) -> None:
        if chunk_size < 4096 or chunk_size & (chunk_size - 1):
            raise StoreError(f"Store {name}: rbd_store_chunk_size must be a power of two (MiB).")
        self.rados, self.rbd = bindings()
        self.name = name
        self.pool = pool
        self.user = user or None
        self.conf_file = conf_file or ""
        self.chunk_size = chunk_size
        self.order = int(math.log2(chunk_size))
        self.connect_timeout = connect_timeout
        self.thin_provisioning = thin_provisioning
        self.node = node_tag(node)
        self.stale_watch_wait = STALE_WATCH_WAIT
        self._zeros = bytes(chunk_size)
        self._ceph = CephConnection(
            name, self.rados, user=self.user, conf_file=self.conf_file, connect_timeout=connect_timeout
        )

    # --- the connection ---------------------------------------------------------------------------
    def _connection(self) -> Any:
        return self._ceph.connection()

    def _ioctx(self, pool: str | None = None) -> Any:
        return self._ceph.ioctx(pool or self.pool)

    @property
    def fsid(self) -> str:
        return self._ceph.fsid

    # --- locations ---------------------------------------------------------------------------------
    def url_for(self, image: str) -> str:
        q = urllib.parse.quote
        return f"rbd://{q(self.fsid, safe='')}/{q(self.pool, safe='')}/{q(image, safe='')}/{SNAPSHOT}"

    def _parse(self, url: str) -> tuple[str, str, str | None]:
        """(pool, image, snapshot) of a Glance rbd location; the old one-part form reads our pool's head."""
        scheme, sep, rest = url.partition("://")
        if not sep or scheme != "rbd" or not rest:
            raise StoreError(f"Location {url} is not an rbd location.")
        parts = [urllib.parse.unquote(p) for p in rest.split("/")]
        if len(parts) == 1:
            return self.pool, parts[0], None
        if len(parts) != 4 or not all(parts):
            raise StoreError(f"Location {url} is not rbd://<fsid>/<pool>/<image>/<snapshot>.")
        fsid, pool, image, snapshot = parts
        if fsid != self.fsid:
            raise StoreError(f"Location {url} belongs to the Ceph cluster {fsid}, not to {self.fsid}.")
        return pool, image, snapshot

    # --- writing -----------------------------------------------------------------------------------
    def add(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        meter = HashingMeter(max_size, hash_algo)
        partial = partial_name(image_id, self.node)
        ioctx = self._ioctx()
        try:
            self._create(ioctx, partial, expected_size or 0)
            try:
                self._write(ioctx, partial, chunks, meter, expected_size)
                self._publish(ioctx, partial, image_id)
            except BaseException:
                self._remove_quietly(ioctx, partial)
                raise
        finally:
            ioctx.close()
        return meter.result(self.url_for(image_id))

    def _create(self, ioctx: Any, name: str, size: int) -> None:
        features = self._connection().conf_get("rbd_default_features")
        features = int(features) if features and int(features) else self.rbd.RBD_FEATURE_LAYERING
        with self._errors(f"creating {self.pool}/{name}"):
            self.rbd.RBD().create(ioctx, name, size, order=self.order, old_format=False, features=features)

    def _write(
        self, ioctx: Any, name: str, chunks: Iterable[bytes], meter: HashingMeter, expected_size: int | None
    ) -> None:
        """Chunks go out as asynchronous writes, IN_FLIGHT at a time, while the next ones arrive and hash."""
        with self._errors(f"writing {self.pool}/{name}"), self.rbd.Image(ioctx, name) as image:
            allocated = expected_size or 0
            offset = 0
            pending: deque[tuple[Any, bytes]] = deque()

            def settle(keep: int) -> None:
                while len(pending) > keep:
                    completion, block = pending.popleft()
                    completion.wait_for_complete_and_cb()
                    code = completion.get_return_value()
                    if code < 0:
                        raise StoreError(
                            f"Ceph failed writing {len(block)} bytes to {self.pool}/{name}: {os.strerror(-code)}."
                        )

            def flush(block: bytes) -> None:
                nonlocal allocated, offset
                end = offset + len(block)
                if end > allocated:
                    allocated = max(end, allocated + min(max(allocated, self.chunk_size), MAX_GROW))
                    image.resize(allocated)
                if not (self.thin_provisioning and block == self._zeros[: len(block)]):
                    pending.append((image.aio_write(block, offset, _ignore), block))
                    settle(IN_FLIGHT - 1)
                offset = end

            try:
                check = functools.partial(meter.check_expected, expected_size)
                for block in fixed_blocks(metered(chunks, meter), self.chunk_size, check):
                    flush(block)
                settle(0)
            finally:
                for completion, _block in pending:  # never close the image under writes in flight
                    completion.wait_for_complete_and_cb()
            if allocated != meter.size:
                image.resize(meter.size)
            image.flush()
            image.create_snap(SNAPSHOT)
            image.protect_snap(SNAPSHOT)

    def _publish(self, ioctx: Any, partial: str, image_id: str) -> None:
        """The complete image takes the image id; data already there (a replacement) is removed first."""
        try:
            self._remove(ioctx, image_id)
        except NotFound:
            pass
        with self._errors(f"renaming {self.pool}/{partial} to {image_id}"):
            self.rbd.RBD().rename(ioctx, partial, image_id)

    # --- pieces (tus uploads) -------------------------------------------------------------------------
    # One RBD image per tus upload, `<image id>.tus-<upload id>`, each PATCH written at the offset the handle
    # records (a PATCH that fails is cut off again: the image shrinks back to it). The end snapshots it and gives
    # it the image id, Glance's layout; partial uploads are joined by copying the later ones after the first.
    def begin_pieces(self, image_id: str, upload_id: str) -> str:
        name = f"{image_id}.tus-{upload_id.replace('-', '')}"
        ioctx = self._ioctx()
        try:
            self._create(ioctx, name, 0)
        finally:
            ioctx.close()
        return json.dumps({"name": name, "size": 0})

    def append_piece(self, handle: str, chunks: Iterable[bytes]) -> str:
        state = json.loads(handle)
        size = self._append(state["name"], state["size"], chunks)
        return handle if size == state["size"] else json.dumps({**state, "size": size})

    def _append(self, name: str, start: int, chunks: Iterable[bytes]) -> int:
        """Write the chunks at `start`; the new end. On failure the image is cut back to `start`."""
        ioctx = self._ioctx()
        try:
            with self._errors(f"writing {self.pool}/{name}"), self.rbd.Image(ioctx, name) as image:
                offset = start
                try:
                    for block in fixed_blocks(chunks, self.chunk_size, lambda: None):
                        image.resize(offset + len(block))
                        image.write(block, offset)
                        offset += len(block)
                    image.flush()
                except BaseException:
                    image.resize(start)
                    raise
            return offset
        finally:
            ioctx.close()

    def assemble(self, image_id: str, handles: Sequence[str]) -> str:
        states = [json.loads(h) for h in handles]
        first = states[0]
        for later in states[1:]:  # joined onto the first one, then gone
            first["size"] = self._append(first["name"], first["size"], self.get(self._piece_url(later["name"])))
        ioctx = self._ioctx()
        try:
            with self._errors(f"publishing {self.pool}/{first['name']}"), self.rbd.Image(ioctx, first["name"]) as image:
                image.resize(first["size"])
                image.flush()
                image.create_snap(SNAPSHOT)
                image.protect_snap(SNAPSHOT)
            for later in states[1:]:
                self._remove_quietly(ioctx, later["name"])
            self._publish(ioctx, first["name"], image_id)
        finally:
            ioctx.close()
        return self.url_for(image_id)

    def _piece_url(self, name: str) -> str:
        """The one-part location form: the head of an image of the store's pool (a piece has no snapshot)."""
        return f"rbd://{urllib.parse.quote(name, safe='')}"

    def drop_pieces(self, handle: str, keep: str | None = None) -> None:
        state = json.loads(handle)
        ioctx = self._ioctx()
        try:
            if keep is None:
                self._remove_quietly(ioctx, state["name"])
                return
            with self._errors(f"cutting {self.pool}/{state['name']}"), self.rbd.Image(ioctx, state["name"]) as image:
                image.resize(json.loads(keep)["size"])
        finally:
            ioctx.close()

    # --- reading -----------------------------------------------------------------------------------
    def _open(self, url: str) -> tuple[Any, Any]:
        pool, name, snapshot = self._parse(url)
        ioctx = self._ioctx(pool)
        try:
            with self._errors(url):
                return ioctx, self.rbd.Image(ioctx, name, snapshot=snapshot, read_only=True)
        except BaseException:
            ioctx.close()
            raise

    def get(self, url: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        ioctx, image = self._open(url)
        try:
            with self._errors(url):
                size = image.size()
        except BaseException:
            image.close()
            ioctx.close()
            raise
        end = size if length is None else min(size, offset + length)
        return self._read(ioctx, image, offset, end, url)

    def _read(self, ioctx: Any, image: Any, offset: int, end: int, url: str) -> Iterator[bytes]:
        try:
            while offset < end:
                want = min(self.chunk_size, end - offset)
                try:
                    block = image.read(offset, want)
                except self.rbd.Error as exc:
                    raise StoreUnavailable(f"Reading image data from {url} failed: {reason(exc)}.") from exc
                if not block:
                    return
                offset += len(block)
                yield block
        finally:
            image.close()
            ioctx.close()

    def size(self, url: str) -> int:
        ioctx, image = self._open(url)
        try:
            with self._errors(url):
                return int(image.size())
        finally:
            image.close()
            ioctx.close()

    # --- deleting ----------------------------------------------------------------------------------
    def check_deletable(self, url: str) -> None:
        """ImageInUse when a snapshot of the image has clones (volumes, instances): Glance answers 409."""
        pool, name, _snapshot = self._parse(url)
        ioctx = self._ioctx(pool)
        try:
            where = f"{pool}/{name}"
            with self._errors(where), self.rbd.Image(ioctx, name, read_only=True) as image:
                for snap in image.list_snaps():
                    _refuse_cloned(image, snap["name"], where)
        except NotFound:
            pass
        finally:
            ioctx.close()

    def delete(self, url: str) -> None:
        pool, name, _snapshot = self._parse(url)
        ioctx = self._ioctx(pool)
        try:
            self._remove(ioctx, name)
        except NotFound:
            pass
        finally:
            ioctx.close()

    def _remove(self, ioctx: Any, name: str) -> None:
        """Unprotect and remove the image's snapshots, then the image. NotFound when it is not there;
        StoreError when clones of it exist or a client has it open (nothing is removed then)."""
        where = f"{ioctx.get_pool_name()}/{name}"
        with self._errors(where):
            with self.rbd.Image(ioctx, name) as image:
                for snap in list(image.list_snaps()):
                    _refuse_cloned(image, snap["name"], where)
                    image.set_snap(None)
                    if image.is_protected_snap(snap["name"]):
                        image.unprotect_snap(snap["name"])
                    image.remove_snap(snap["name"])
            self.rbd.RBD().remove(ioctx, name)

    def _remove_quietly(self, ioctx: Any, name: str) -> bool:
        try:
            self._remove(ioctx, name)
        except NotFound:
            return False
        except Exception:
            log.exception("Could not remove the partial RBD image %s/%s", self.pool, name)
            return False
        return True

    # --- crashed writers ---------------------------------------------------------------------------
    def _partials(self, image_id: str, node: str) -> tuple[Any, list[str]]:
        """The pool's temporary images that `node` wrote for image_id ("*": for any image)."""
        tag = node_tag(node)
        ioctx = self._ioctx()
        try:
            with self._errors(f"listing the pool {self.pool}"):
                names = self.rbd.RBD().list(ioctx)
        except BaseException:
            ioctx.close()
            raise
        found = [n for n in names if is_partial(n, tag, image_id)]
        return ioctx, found

    def _remove_abandoned(self, ioctx: Any, name: str) -> bool:
        """Remove a dead writer's partial image, waiting out the watch the OSDs still keep for it."""
        deadline = time.monotonic() + self.stale_watch_wait
        while True:
            try:
                self._remove(ioctx, name)
                return True
            except NotFound:
                return False
            except ImageInUse:
                if time.monotonic() >= deadline:
                    log.warning(
                        "The partial RBD image %s/%s is still open by a client; left in place.", self.pool, name
                    )
                    return False
                time.sleep(1.0)
            except Exception:
                log.exception("Could not remove the partial RBD image %s/%s", self.pool, name)
                return False

    def recover(self, node: str) -> int:
        ioctx, names = self._partials("*", node)
        try:
            return sum(self._remove_abandoned(ioctx, n) for n in names)
        finally:
            ioctx.close()

    def discard_partial(self, image_id: str, node: str) -> None:
        ioctx, names = self._partials(image_id, node)
        try:
            for n in names:
                self._remove_abandoned(ioctx, n)
        finally:
            ioctx.close()

    def properties(self) -> dict[str, object]:
        return {
            "pool": self.pool,
            "user": self.user or "admin",
            "ceph_conf": self.conf_file,
            "chunk_size": self.chunk_size // MIB,
            "thin_provisioning": self.thin_provisioning,
        }

    # --- errors ------------------------------------------------------------------------------------
    def _errors(self, what: str) -> RbdErrors:
        return RbdErrors(self.rados, self.rbd, what)


def _refuse_cloned(image: Any, snapshot: str, where: str) -> None:
    """ImageInUse when the snapshot has clones (volumes, instances); leaves the image at that snapshot."""
    image.set_snap(snapshot)
    children = [f"{c['pool']}/{c['image']}" for c in image.list_children2()]
    if children:
        raise ImageInUse(
            f"Image data {where} is in use: its snapshot {snapshot} has clones "
            f"({', '.join(sorted(children))}); flatten or delete them first."
        )
