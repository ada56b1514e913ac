"""The cinder store: each image's data is a Cinder volume, written and read through an attachment to this
node (cinder_volumes.py: python-cinderclient for the volume's life, os-brick to reach its bytes).

The layout is Glance's, so Glance and Glimpse read each other's volumes: the volume is named
`image-<image id>` and carries the metadata `glance_image_id` and `image_size` (the data's exact size;
a volume's size is whole GiB); locations are `cinder://<volume id>`, or `cinder://<store>/<volume id>`
in the multi-store mode, and both forms are read (the volume id is the last part).

Writing: a volume of the announced size in GiB (1 GiB when unknown) is created in the store user's
project, of cinder_volume_type, waited for until available (cinder_state_transition_timeout), attached
read-write and written in blocks; when the data outgrows it, it is extended by 1 GiB at a time, as Glance
does: detached, extended and attached again, or extended while attached with cinder_do_extend_attached.
Once complete and of the expected size it is detached, its `image_size` set and it is made read-only.
While it is written it carries `glimpse_writer` (the node's tag), `glimpse_upload` (this upload's) and
`glimpse_writing` (the name the domain writes under: the image id, or an import attempt's `<id>.<task>.<n>`):
any failure (size cap, wrong size, the client gone, Cinder failing) detaches and deletes it, and
`recover` / `discard_partial` delete the volumes a dead writer left (found by that metadata), their
attachments first. A complete volume has no such keys.

Reading: the volume is attached read-only, the requested range read, and it is detached when the
reader is exhausted or closed. Two nodes reading one volume at once need a multiattach volume type (as
in Glance). Deleting waits until Cinder has removed the volume.

Unlike Glance, the store always works as the user it is configured with (cinder_store_auth_address,
cinder_store_user_name, cinder_store_password, cinder_store_project_name, or an application
credential): volumes are never created in the requesting user's project.
"""

from __future__ import annotations

import functools
import logging
import math
import re
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from typing import Any

from glimpse.errors import InUse, NotFound, StoreError, StoreFull, StoreUnavailable
from glimpse.store.base import HashingMeter, StoredData
from glimpse.store.cinder_volumes import (
    EXTEND_ATTACHED,
    CinderAccess,
    Connector,
    VolumeGone,
    attached,
    cinder_exceptions,
    detach_all,
    expect_status,
    make_client,
    retrying,
    wait_for,
)
from glimpse.store.objects import MIB, fixed_blocks, metered
from glimpse.store.partials import node_tag, upload_tag

log = logging.getLogger(__name__)

GIB = 1024 * MIB
BLOCK = 4 * MIB  # bytes written or read at a time
WRITER = "glimpse_writer"  # metadata of a volume being written: the writing node's tag
UPLOAD = "glimpse_upload"  # ... this upload's tag
WRITING = "glimpse_writing"  # ... and the name the data is written under (the image id, or an import attempt's)
UUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
# Statuses a volume leaves by itself; an attached one ("reserved", "attaching", "in-use") waits for its user.
TRANSITIONS = {"creating", "extending", "detaching", "maintenance"}
ATTACHED = {"reserved", "attaching", "in-use"}


class VolumeInUse(InUse, StoreError):
    """The volume is attached somewhere (a reader on another node): it cannot be deleted now."""


class CinderStore:
    type = "cinder"
    schemes = ("cinder",)
    read_only = False

    def __init__(
        self,
        name: str,
        access: CinderAccess,
        *,
        volume_type: str | None = None,
        connector: Connector | None = None,
        state_timeout: float = 300,
        extend_attached: bool = False,
        attach_tries: int = 5,
        multi: bool = False,
        node: str = "",
    ) -> None:
        self.name = name
        self.access = access
        self.volume_type = volume_type or None
        self.connector = connector or Connector()
        self.state_timeout = state_timeout
        self.extend_attached = extend_attached
        self.attach_tries = attach_tries
        self.multi = multi
        self.node = node_tag(node)
        self._clients: dict[str, Any] = {}

    # --- the API client ----------------------------------------------------------------------------
    def _client(self, microversion: str | None = None) -> Any:
        """One client per microversion, made on first use (in each worker process)."""
        key = microversion or ""
        if key not in self._clients:
            try:
                self._clients[key] = (
                    make_client(self.access, microversion) if microversion else make_client(self.access)
                )
            except Exception as exc:
                raise StoreUnavailable(f"Store {self.name}: cannot reach Block Storage: {exc}") from exc
        return self._clients[key]

    # --- locations ---------------------------------------------------------------------------------
    def url_for(self, image_id: str) -> str:
        """Volumes are named by Cinder, not by the image: a location exists only once data is written."""
        raise StoreError(f"Store {self.name}: a cinder location names a volume, known once the data is written.")

    def _url(self, volume_id: str) -> str:
        return f"cinder://{self.name}/{volume_id}" if self.multi else f"cinder://{volume_id}"

    def _volume_id(self, url: str) -> str:
        scheme, sep, rest = url.partition("://")
        volume_id = rest.rstrip("/").rsplit("/", 1)[-1]
        if not sep or scheme != "cinder" or not UUID.match(volume_id):
            raise StoreError(f"Location {url} is not cinder://[<store>/]<volume id>.")
        return volume_id

    # --- writing -----------------------------------------------------------------------------------
    def add(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        meter = HashingMeter(max_size, hash_algo)
        client = self._client()
        # An import writes each attempt under `<image id>.<task>.<generation>`: the volume still names the image.
        glance_id = image_id.split(".", 1)[0]
        metadata = {
            "glance_image_id": glance_id,
            "image_size": str(expected_size or 0),
            WRITER: self.node,
            UPLOAD: upload_tag(),
            WRITING: image_id,
        }
        size_gib = max(1, math.ceil((expected_size or 0) / GIB))
        with self._errors(f"creating a volume for image {glance_id}"):
            volume = client.volumes.create(
                size_gib, name=f"image-{glance_id}", metadata=metadata, volume_type=self.volume_type
            )
        try:
            volume = wait_for(client, volume.id, {"creating"}, self.state_timeout)
            expect_status(volume, "available", "its creation")
            self._write(volume, chunks, meter, expected_size)
            with self._errors(f"completing volume {volume.id}"):
                client.volumes.set_metadata(volume.id, {"image_size": str(meter.size)})
                client.volumes.delete_metadata(volume.id, [WRITER, UPLOAD, WRITING])
                client.volumes.update_readonly_flag(volume.id, True)
        except BaseException:
            self._remove_quietly(volume.id)
            raise
        return meter.result(self._url(volume.id))

    def _write(self, volume: Any, chunks: Iterable[bytes], meter: HashingMeter, expected_size: int | None) -> None:
        check = functools.partial(meter.check_expected, expected_size)
        blocks = fixed_blocks(metered(chunks, meter), BLOCK, check)
        capacity = int(volume.size) * GIB
        written = 0
        waiting: bytes | None = None  # a block that did not fit before the volume was extended
        done = False
        while not done:
            with self._attached(volume.id, "rw") as handle:
                handle.seek(written)
                for block in _prepend(waiting, blocks):
                    waiting = None
                    if written + len(block) > capacity:
                        if not self.extend_attached:
                            waiting = block
                            break
                        capacity = self._extend(volume.id, capacity, "in-use")
                        handle.seek(written)
                    self._io(volume.id, "writing", handle.write, block)
                    written += len(block)
                else:
                    done = True
                self._io(volume.id, "flushing", handle.flush)
            if not done:
                capacity = self._extend(volume.id, capacity, "available")

    def _extend(self, volume_id: str, capacity: int, status: str) -> int:
        """Grow the volume by 1 GiB (as Glance does); its new capacity in bytes. StoreFull when Cinder cannot."""
        client = self._client(EXTEND_ATTACHED) if status == "in-use" else self._client()
        new_gib = capacity // GIB + 1
        with self._errors(f"extending volume {volume_id} to {new_gib} GiB"):
            client.volumes.extend(volume_id, new_gib)
        volume = wait_for(client, volume_id, {"extending"}, self.state_timeout)
        if volume.status != status or int(volume.size) < new_gib:
            raise StoreFull(f"Store {self.name}: volume {volume_id} could not grow to {new_gib} GiB ({volume.status}).")
        return int(volume.size) * GIB

    # --- reading -----------------------------------------------------------------------------------
    def _volume(self, url: str) -> Any:
        volume_id = self._volume_id(url)
        exceptions = cinder_exceptions()
        try:
            volume = self._client().volumes.get(volume_id)
        except exceptions.NotFound as exc:
            raise NotFound(f"Volume {volume_id} of location {url} does not exist.") from exc
        except exceptions.ClientException as exc:
            raise StoreUnavailable(f"Store {self.name}: reading volume {volume_id} failed: {exc}") from exc
        except Exception as exc:
            raise StoreUnavailable(f"Store {self.name}: cannot reach Block Storage: {exc}") from exc
        if volume.status in {"deleting", "error_deleting"}:
            raise NotFound(f"Volume {volume_id} of location {url} is being deleted.")
        return volume

    @staticmethod
    def _data_size(volume: Any) -> int:
        recorded = (volume.metadata or {}).get("image_size")
        return int(recorded) if recorded and str(recorded).isdigit() else int(volume.size) * GIB

    def size(self, url: str) -> int:
        return self._data_size(self._volume(url))

    def get(self, url: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        volume = self._volume(url)
        size = self._data_size(volume)
        end = size if length is None else min(size, offset + length)
        if offset >= end:
            return iter(())
        stack = ExitStack()
        try:
            handle = stack.enter_context(self._attached(volume.id, "ro"))
            handle.seek(offset)
        except BaseException:
            stack.close()
            raise
        return _VolumeReader(self, volume.id, handle, stack, end - offset)

    # --- deleting ----------------------------------------------------------------------------------
    def delete(self, url: str) -> None:
        volume_id = self._volume_id(url)
        try:
            self._remove(volume_id)
        except VolumeGone:
            pass

    def _remove(self, volume_id: str, *, detach: bool = False) -> None:
        """Delete the volume and wait until it is gone. VolumeGone when it was not there; VolumeInUse when
        it is attached (detach: delete its attachments first, a dead writer's)."""
        client = self._client()
        exceptions = cinder_exceptions()

        def step() -> bool:
            volume = wait_for(client, volume_id, TRANSITIONS, self.state_timeout)
            if volume.status == "deleting":
                return False
            if volume.status == "error_deleting":
                raise StoreError(f"Cinder failed deleting volume {volume_id}.")
            if volume.attachments or volume.status in ATTACHED:
                if not detach:
                    raise VolumeInUse(f"Volume {volume_id} is attached (in use); it cannot be deleted now.")
                detach_all(client, volume_id)
                return False
            try:
                client.volumes.delete(volume_id)
            except exceptions.NotFound as exc:
                raise VolumeGone(f"Volume {volume_id} does not exist.") from exc
            except exceptions.BadRequest:
                return False  # raced with a transition: look again
            return False

        try:
            retrying(f"deleting volume {volume_id}", step, self.state_timeout)
        except VolumeGone:
            if not detach:
                return
            raise

    def _remove_quietly(self, volume_id: str) -> bool:
        try:
            self._remove(volume_id, detach=True)
        except VolumeGone:
            return True
        except Exception:
            log.exception("Could not delete the partial volume %s", volume_id)
            return False
        return True

    # --- crashed writers ---------------------------------------------------------------------------
    def _partials(self, node: str, image_id: str | None = None) -> list[str]:
        """Volumes that `node` was writing (for image_id, or any image) when it stopped."""
        query: dict[str, str] = {WRITER: node_tag(node)}
        if image_id:
            query[WRITING] = image_id
        with self._errors("listing the volumes being written"):
            volumes = self._client().volumes.list(search_opts={"metadata": query})
        # The filter is Cinder's; check the metadata here too, as a backend may ignore an unknown filter.
        return [v.id for v in volumes if all((v.metadata or {}).get(k) == val for k, val in query.items())]

    def recover(self, node: str) -> int:
        return sum(self._remove_quietly(v) for v in self._partials(node))

    def discard_partial(self, image_id: str, node: str) -> None:
        for volume_id in self._partials(node, image_id):
            self._remove_quietly(volume_id)

    def properties(self) -> dict[str, object]:
        return {
            "volume_type": self.volume_type or "",
            "catalog_info": self.access.catalog_info,
            "region": self.access.region,
            "project": self.access.project,
            "user": self.access.user,
            "multipath": self.connector.use_multipath,
        }

    # --- helpers -----------------------------------------------------------------------------------
    def _attached(self, volume_id: str, mode: str) -> Any:
        return _ClientErrors(self, volume_id, mode)

    def _io(self, volume_id: str, doing: str, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except OSError as exc:
            raise StoreFull(f"Store {self.name}: {doing} volume {volume_id} failed: {exc}") from exc
        except Exception as exc:
            raise StoreUnavailable(f"Store {self.name}: {doing} volume {volume_id} failed: {exc}") from exc

    def _errors(self, doing: str) -> _Errors:
        return _Errors(self.name, doing)


class _Errors:
    """Cinder's API errors as store errors: over quota -> StoreFull, anything else -> StoreUnavailable."""

    def __init__(self, store: str, doing: str) -> None:
        self.store = store
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None or not isinstance(exc, Exception) or isinstance(exc, StoreError | NotFound):
            return
        exceptions = cinder_exceptions()
        message = f"Store {self.store}: {self.doing} failed: {exc}"
        if isinstance(exc, exceptions.OverLimit) or "quota" in str(exc).lower():
            raise StoreFull(message) from exc
        raise StoreUnavailable(message) from exc


class _ClientErrors:
    """attached() with Cinder's and os-brick's errors as store errors."""

    def __init__(self, store: CinderStore, volume_id: str, mode: str) -> None:
        self._cm = attached(
            store._client(),
            volume_id,
            mode,
            store.connector,
            tries=store.attach_tries,
            timeout=store.state_timeout,
        )
        self._errors = store._errors(f"attaching volume {volume_id} ({mode})")

    def __enter__(self) -> Any:
        with self._errors:
            return self._cm.__enter__()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool | None:
        return self._cm.__exit__(kind, exc, tb)  # type: ignore[arg-type]


class _VolumeReader:
    """The bytes of an attached volume's range; detaches when exhausted or closed."""

    def __init__(self, store: CinderStore, volume_id: str, handle: Any, stack: ExitStack, remaining: int) -> None:
        self._store = store
        self._volume_id = volume_id
        self._handle = handle
        self._stack = stack
        self._remaining = remaining

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._remaining <= 0:
            self.close()
            raise StopIteration
        try:
            block = self._store._io(self._volume_id, "reading", self._handle.read, min(BLOCK, self._remaining))
        except BaseException:
            self.close()
            raise
        if not block:
            self.close()
            raise StopIteration
        self._remaining -= len(block)
        return bytes(block)

    def close(self) -> None:
        self._remaining = 0
        self._stack.close()

    def __del__(self) -> None:
        try:  # a reader dropped without close(): its attachment is still released
            self._stack.close()
        except Exception:
            log.exception("Could not detach volume %s", self._volume_id)


def _prepend(first: bytes | None, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first is not None:
        yield first
    yield from rest
