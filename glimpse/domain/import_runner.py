"""Interoperable image import, the running side: a worker claims a task, brings the data in, publishes it.

Claims are fenced (db/tasks.py): each claim raises the task's generation, and every publishing write
(activate, add_location, giving the image back to queued) checks it in the same transaction.

Data written by an import or a copy is named per attempt (`<image id>.<task>.<generation>` in every
store), never under a name another attempt could also write. So a worker that lost its claim (it stalled,
and another process took the task over) deletes only what it wrote itself, never the winner's data; it
touches nothing shared (image status, reservation, staged file) and does not end the task, which is the
winner's now.

What comes in is metered against the owner's quota while it streams (download, decompression), and
what is finally stored (each copy) is reserved before it is written; every failure leaves the image
queued (with os_glance_failed_import), no reservation and no partial data.
"""

from __future__ import annotations

import errno
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from glimpse.domain.audit_entries import IMPORT, AuditEntry, recording
from glimpse.domain.data_meter import counted
from glimpse.domain.dedup import Dedup
from glimpse.domain.entities import Fence, Image, Location, StoredData, Task
from glimpse.domain.image_data import ImageData
from glimpse.domain.import_claim import Claim, ImportStopped, ImportTiming, is_held, process_name
from glimpse.domain.import_sources import TOKEN_LOST, Sources
from glimpse.domain.imports import FAILED_IMPORT, IMPORT_TASK, IMPORTING_TO, SIGNING
from glimpse.domain.limits import Limits
from glimpse.domain.notifications import Events, import_lists
from glimpse.domain.ports import DataMeter, ImageRepository, Store, StoreRegistry, TaskRepository
from glimpse.domain.quotas import QuotaService
from glimpse.domain.signatures import Signatures, guarded
from glimpse.errors import BadRequest, ClaimLost, Conflict, GlimpseError, NotFound, StoreFull, TooLarge
from glimpse.filespan import FileSpan
from glimpse.formats import conversion
from glimpse.formats.inspection import FormatGuard, FormatRules

log = logging.getLogger(__name__)

Placed = list[tuple[StoredData, int | None, Store]]
STARTER_LOST = "the request starting it stopped before its image was set up; start the import again"


class ImportRunner:
    def __init__(
        self,
        repo: ImageRepository,
        stores: StoreRegistry,
        limits: Limits,
        quotas: QuotaService,
        uploads: ImageData,
        format_rules: FormatRules,
        tasks: TaskRepository,
        sources: Sources,
        scratch: Path,
        node: str,
        timing: ImportTiming,
        signatures: Signatures | None = None,
        events: Events | None = None,
        meter: DataMeter | None = None,
        sweep_also: Sequence[Callable[[], int]] = (),
        dedup: Dedup | None = None,
    ) -> None:
        """meter: counts the data the node fetches (web-download, glance-download, copy-image); sweep_also: other
        clean-ups the periodic sweep runs (resumable uploads past their expiry); dedup: deduplicated storage (off
        without it)."""
        self.sweep_also = tuple(sweep_also)
        self.dedup = dedup or Dedup(None, stores, False, limits.hashing_algorithm)
        self.events = events or Events()
        self.meter = meter
        self.repo = repo
        self.stores = stores
        self.limits = limits
        self.quotas = quotas
        self.uploads = uploads  # its sweep of abandoned uploads runs with the runner's
        self.format_rules = format_rules
        self.tasks = tasks
        self.sources = sources
        self.staging = sources.staging
        self.options = sources.options
        self.scratch = scratch
        self.node = node
        self.timing = timing
        self.signatures = signatures or Signatures(None)

    # --- claiming and ending ---------------------------------------------------------------------------
    def claim_next(self, worker: str) -> Task | None:
        return self.tasks.claim(worker, self.timing.stale_after)

    def run(self, task: Task) -> None:
        """Run a claimed task to its end (or until its claim is lost)."""
        fence = task.fence
        if task.generation > self.timing.max_attempts:
            self._fail(task, fence, f"The import was interrupted {task.generation - 1} times; it was given up.")
            return
        claim = Claim(fence, lambda m: self.tasks.heartbeat(fence, m), lambda: self._unwanted(task), self.timing)
        self.events.task("task.run", task)
        self.events.task("task.processing", task)
        try:
            with claim:
                result = self._copy(task, claim) if task.input.get("copy") else self._import(task, claim)
        except GlimpseError as exc:
            if isinstance(exc, ClaimLost) or claim.lost:
                log.warning("Task %s: claim lost (another process runs it now); this attempt stopped", task.id)
            elif not self._stopped(task, fence, exc.message):
                log.warning("Import task %s of image %s failed: %s", task.id, task.image_id, exc.message)
                self._fail(task, fence, exc.public_message)
        except Exception as exc:  # a task must end, whatever happened inside it
            if not self._stopped(task, fence, str(exc)):
                log.exception("Import task %s failed", task.id)
                self._fail(task, fence, f"Import failed: {exc}")
        else:
            if self.tasks.finish(fence, "success", "Import complete", result):
                self._ended(task, "task.success")
        finally:
            self.sources.tokens.forget(task.id)

    def _stopped(self, task: Task, fence: Fence, error: str) -> bool:
        """After a failure: when the image no longer wants the task (deleted or changed meanwhile), the task ends
        saying that, not the error it caused (a deletion removes the staged file an import reads where it is)."""
        try:
            why = self._unwanted(task)
        except Exception:  # the database cannot say either: the error is all there is
            return False
        if why is None:
            return False
        log.warning("Import task %s of image %s stopped: %s (%s)", task.id, task.image_id, why, error)
        self._fail(task, fence, why)
        return True

    def _unwanted(self, task: Task) -> str | None:
        """Why the task's image no longer wants it (asked at every heartbeat), or None."""
        try:
            image = self.repo.get(task.image_id or "")
        except NotFound:
            return f"Image {task.image_id} was deleted; the import stopped and its data was removed."
        wanted = "active" if task.input.get("copy") else "importing"
        if image.status != wanted or image.properties.get(IMPORT_TASK, task.id) != task.id:
            return f"Image {image.id} is {image.status}, no longer importing; the import stopped."
        return None

    def _fail(self, task: Task, fence: Fence, message: str) -> None:
        """The task failed while its claim holds: the image back to queued (a copy: stays active) with
        os_glance_failed_import, its reservation and staged data released, the task ended."""
        image_id = task.image_id or ""
        failed = _finished(task.input.get("stores") or [])
        try:
            if not task.input.get("copy"):
                with recording(_task_entry(task, "image.import.fail", status=["importing", "queued"])):
                    self.repo.transition(image_id, "importing", "queued", fence=fence)
            self.repo.set_internal_properties(image_id, failed, remove=(IMPORT_TASK,), fence=fence)
        except ClaimLost:
            return  # another process owns the task now: everything shared is its business
        except (Conflict, NotFound):
            # Deleted, or not importing: its reservation and staged data are not this task's (the sweeps take
            # those of a deleted image); a staged image that never began importing keeps its data.
            pass
        else:
            self.quotas.release(image_id)
            if not task.input.get("copy"):
                self.staging.delete(self.sources.staged_url(image_id))
        if self.tasks.finish(fence, "failure", message, {}):
            self._ended(task, "task.failure")

    def _ended(self, task: Task, event_type: str) -> None:
        if self.events.wants(event_type):
            try:
                self.events.task(event_type, self.tasks.get(task.id))
            except NotFound:
                log.debug("Task %s is gone; no %s", task.id, event_type)

    def _published(self, image_id: str) -> None:
        """An import's data is in: Glance's image.upload, image.activate and image.update."""
        if not self.events.wants("image"):
            return
        try:
            image = self.repo.get(image_id)
        except NotFound:
            return
        self.events.image("image.upload", image, **import_lists(image))
        self.events.image("image.activate", image)
        self.events.image("image.update", image)

    # --- importing ---------------------------------------------------------------------------------
    def _import(self, task: Task, claim: Claim) -> dict[str, Any]:
        image = self.repo.get(task.image_id or "")
        if image.status != "importing":
            raise ImportStopped(f"Image {image.id} is {image.status}, no longer importing.")
        method = task.input["method"]
        targets = task.input.get("stores") or [self.stores.default]
        with self._work_area() as work:
            local = work / "source"
            with claim.step("download"), self._filling():
                verifier = self.signatures.verifier_for_task(image, task.input.get(SIGNING))
                source = self.sources.open(image, method, task.id)
                staged = self._whole_local_file(source) if verifier is None else None
                if staged is not None:
                    local = staged
                else:
                    chunks: Iterable[bytes] = claim.watch(source, "Received")
                    if method["name"] != "glance-direct":  # staged data was counted when it was staged
                        chunks = counted(chunks, self.meter, method["name"])
                        chunks = self.quotas.metered_import(image.id, image.owner, chunks)
                    # The signature covers the bytes as they come in, before any conversion.
                    self._write(guarded(chunks, verifier), local)
            with claim.step("conversion"), self._filling():
                disk_format, container_format, local = self._prepare(image, local, work, claim, len(targets))
            # What is finally stored is what counts: every copy of the (converted) data, before writing it.
            self.quotas.ensure(image.id, image.owner, local.stat().st_size * len(targets))
            with claim.step("store"):
                placed, failed = self._store_all(task, image, targets, local, disk_format, claim)
        stored, verdict, store = placed[0]
        expected = method.get("expect")
        if expected and method.get("algo") == stored.hash_algo and expected != stored.hash_value:
            _remove(placed)
            raise BadRequest("The downloaded data does not match the remote image's os_hash_value.")
        values: dict[str, Any] = dict(
            size=stored.size, checksum=stored.checksum, os_hash_algo=stored.hash_algo,
            os_hash_value=stored.hash_value, virtual_size=verdict, disk_format=disk_format,
            container_format=container_format,
        )  # fmt: skip
        properties = {**task.input.get("inject", {}), **_finished(failed)}
        finished = _task_entry(
            task, "image.import.finish", status=["importing", "active"], size=[None, stored.size],
            stores=[None, [where.name for _, _, where in placed]],
        )  # fmt: skip
        try:
            with recording(finished):
                redundant = self.repo.activate(
                    image.id, "importing", _location(store, stored),
                    extra=[_location(w, d) for d, _, w in placed[1:]], fence=claim.fence,
                    properties=properties, remove_properties=(IMPORT_TASK,),
                    shared=all(self.dedup.applies(where) for _, _, where in placed), **values,
                )  # fmt: skip
        except Conflict as exc:
            _remove(placed)  # named for this attempt only: nobody else's data
            if isinstance(exc, ClaimLost):
                raise
            raise ImportStopped(f"Image {image.id} was deleted during its import; its data was removed.") from None
        self.dedup.discard(redundant)  # this attempt's copies of data the stores held already
        self.staging.delete(self.sources.staged_url(image.id))
        self._published(image.id)
        return {"image_id": image.id, "stores": ",".join(where.name for _, _, where in placed)}

    def _store_all(
        self, task: Task, image: Image, targets: list[str], local: Path, disk_format: str, claim: Claim
    ) -> tuple[Placed, list[str]]:
        """Write to every target store; a failure fails all unless all_stores_must_succeed is false."""
        must_succeed = task.input.get("all_stores_must_succeed", True)
        placed: Placed = []
        failed: list[str] = []
        for name in targets:
            store = self.stores.writable(name)
            try:
                stored, verdict = self._store(task, image, store, local, disk_format, claim)
            except GlimpseError as exc:
                if must_succeed or isinstance(exc, (BadRequest, ClaimLost, ImportStopped)) or claim.failure:
                    _remove(placed)  # a refused image is refused everywhere
                    raise
                failed.append(name)
                continue
            placed.append((stored, verdict, store))
        if not placed:
            raise GlimpseError(f"The import failed on every store: {', '.join(failed)}.")
        return placed, failed

    def _store(self, task: Task, image: Image, store: Store, local: Path, disk_format: str, claim: Claim
               ) -> tuple[StoredData, int | None]:  # fmt: skip
        guard = FormatGuard(claim.watch(_read_file(local), "Stored"), disk_format, self.format_rules)
        stored = store.add(
            attempt_name(image.id, task), guard, max_size=self.limits.image_size_cap, expected_size=None,
            hash_algo=self.limits.hashing_algorithm,
        )  # fmt: skip
        if claim.failure is not None:  # lost or cancelled while the store finished: not ours to publish
            store.delete(stored.url)
            claim.check()
        return stored, guard.verdict.virtual_size if guard.verdict else None

    def _whole_local_file(self, source: Iterable[bytes]) -> Path | None:
        """The source's file itself when it is a whole file here (staged data, a file store's copy): read from
        where it is rather than copied to the work area first, which wrote every byte once more and needed the
        room twice. Nothing writes to it meanwhile: staging is refused while the image imports, and a file
        store's data never changes once written; conversions write their own files. None otherwise."""
        if not isinstance(source, FileSpan) or source.path is None or not source.whole_file:
            return None
        source.close()
        if source.size > self.limits.image_size_cap:
            raise _too_large(self.limits.image_size_cap)
        return Path(source.path)

    def _write(self, chunks: Iterable[bytes], path: Path) -> None:
        written = 0
        cap = self.limits.image_size_cap
        with open(path, "wb") as out:
            for chunk in chunks:
                written += len(chunk)
                if written > cap:
                    raise _too_large(cap)
                out.write(chunk)

    def _prepare(self, image: Image, local: Path, work: Path, claim: Claim, copies: int) -> tuple[str, str, Path]:
        """Unpack and convert as the operator's plugins say; every step checks the format first, and an
        output that cannot fit the quota (or the size cap) is refused before it is produced in full."""
        disk_format, container_format = image.disk_format or "raw", image.container_format or "bare"
        room = self._room(image, copies)
        if container_format == "compressed" and "image_decompression" in self.options.plugins:
            unpacked = work / "unpacked"
            claim.wait(lambda: conversion.decompress(local, unpacked, room))
            local, container_format = unpacked, "bare"
        target = self.options.conversion_format
        if "image_conversion" in self.options.plugins and disk_format != target:
            virtual = self._inspect_file(local, disk_format)  # qemu-img only sees data the inspector passed
            if target == "raw" and virtual is not None and virtual > room:
                raise TooLarge(f"The converted image ({virtual} bytes) would exceed the quota or size limit.")
            converted = work / "converted"
            source = local
            limits = self.sources.options.qemu_limits
            claim.wait(lambda: conversion.convert(source, disk_format, target, converted, limits=limits))
            local, disk_format = converted, target
        return disk_format, container_format, local

    def _room(self, image: Image, copies: int) -> int:
        """The most bytes one copy of the prepared data may have: the size cap, or the quota's headroom."""
        room = self.limits.image_size_cap
        headroom = self.quotas.headroom(image.id, image.owner)
        if headroom is not None:
            room = min(room, headroom // max(1, copies))
        return room

    def _inspect_file(self, path: Path, disk_format: str) -> int | None:
        guard = FormatGuard(_read_file(path), disk_format, self.format_rules)
        for _ in guard:
            pass
        return guard.verdict.virtual_size if guard.verdict else None

    # --- copying ---------------------------------------------------------------------------------------
    def _copy(self, task: Task, claim: Claim) -> dict[str, Any]:
        image = self.repo.get(task.image_id or "")
        if image.status != "active":
            raise ImportStopped(f"Image {image.id} is {image.status}: copying stopped.")
        self.quotas.ensure(image.id, image.owner, (image.size or 0) * len(task.input["stores"]))
        copied, failed = [], []
        with self._work_area() as work:
            local = work / "source"
            with claim.step("download"), self._filling():
                # As Glance does, a signed image's data is verified again on every copy.
                verifier = self.signatures.verifier_for_task(image, task.input.get(SIGNING))
                source = self._current_data(image)
                in_place = self._whole_local_file(source) if verifier is None else None
                if in_place is not None:  # a file store's data: read where it is, as glance-direct's
                    local = in_place
                    if self.meter is not None:
                        self.meter.received("copy-image", local.stat().st_size)
                else:
                    read = counted(source, self.meter, "copy-image")
                    self._write(guarded(claim.watch(read, "Read"), verifier), local)
            for name in task.input["stores"]:
                store = self.stores.writable(name)
                try:
                    with claim.step("store"):
                        stored, verdict = self._store(task, image, store, local, image.disk_format or "raw", claim)
                    if stored.hash_value != image.os_hash_value:
                        store.delete(stored.url)
                        raise BadRequest(f"The copy in {name} does not match the image's os_hash_value.")
                    copied_entry = _task_entry(task, "image.import.copy", stores=[None, [name]])
                    try:
                        with recording(copied_entry):
                            recorded = self.repo.add_location(
                                image.id, _location(store, stored), size=image.size, checksum=image.checksum,
                                fence=claim.fence, virtual_size=verdict, shared=self.dedup.applies(store),
                            )  # fmt: skip
                    except Conflict:
                        store.delete(stored.url)  # this attempt's own copy
                        raise
                    if recorded != stored.url:  # the store held this data already: the image shares it
                        store.delete(stored.url)
                    copied.append(name)
                except GlimpseError as exc:
                    log.warning("Copying image %s to %s failed: %s", image.id, name, exc)
                    if task.input.get("all_stores_must_succeed", True) or claim.failure or isinstance(exc, Conflict):
                        raise
                    failed.append(name)
        self.repo.set_internal_properties(image.id, _finished(failed), remove=(IMPORT_TASK,), fence=claim.fence)
        self.quotas.release(image.id)
        return {"image_id": image.id, "stores": ",".join(copied)}

    def _current_data(self, image: Image) -> Iterable[bytes]:
        for location in self.stores.by_weight(image.locations):
            try:
                return self.stores.for_location(location.url, location.metadata).get(location.url)
            except GlimpseError:
                continue
        raise NotFound(f"Image {image.id} has no readable data to copy.")

    # --- sweeping and recovering -------------------------------------------------------------------------
    def sweep(self, worker: str) -> int:
        """Periodic clean-up: orphaned pinned tasks fail, reservations and staged files nothing needs go,
        uploads and stagings whose process died go back to queued. Returns how many were recovered."""
        for task in self.tasks.orphaned_pinned(self.timing.stale_after):
            self._fail_orphan(task, worker)
        swept = self.uploads.sweep_abandoned(self.timing.upload_abandoned_after, extra_stores=[self.staging])
        for also in self.sweep_also:
            swept += also()
        self.sweep_staging()
        self.quotas.sweep()
        return swept

    def _fail_orphan(self, task: Task, worker: str) -> None:
        claimed = self.tasks.claim_orphan(task, worker)
        if claimed is None:
            return
        if is_held(task.pinned_node):
            self._fail(claimed, claimed.fence, f"The import never began: {STARTER_LOST}.")
        else:
            self._fail(claimed, claimed.fence, f"The import stopped: {TOKEN_LOST}.")

    def sweep_staging(self) -> int:
        """Staged files whose image is gone, or neither staged nor importing any more."""
        ids = self.staging.stored_ids()
        statuses = self.repo.statuses(ids) if ids else {}
        removed = 0
        for image_id in ids:
            if statuses.get(image_id) not in ("uploading", "importing"):
                self.staging.delete(self.staging.url_for(image_id))
                removed += 1
        return removed

    def recover(self) -> int:
        """At start-up: this node's tasks from before the restart go back to pending (pinned ones fail:
        their tokens died with the process); leaked staging, reservations and scratch data are swept."""
        prefix = self.node + "/"
        for task in self.tasks.pinned_prefix(prefix):
            self._fail_orphan(task, process_name(self.node))
        released = self.tasks.release_node_prefix(prefix)
        for image_id in self.repo.ids_in_status_on("uploading", self.node):
            try:
                self.repo.transition(image_id, "uploading", "queued", upload_node=None, upload_claim=None)
            except Conflict:
                continue
            self.quotas.release(image_id)
        self.staging.recover(self.node)
        self.sweep_staging()
        self.quotas.sweep()
        shutil.rmtree(self.scratch, ignore_errors=True)
        return released

    @contextmanager
    def _work_area(self) -> Iterator[Path]:
        """A folder of its own for one attempt, in this node's scratch folder (cleared when the node starts), gone
        after it."""
        with self._filling():
            self.scratch.mkdir(parents=True, exist_ok=True)
            folder = tempfile.mkdtemp(dir=self.scratch)
        try:
            yield Path(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    @contextmanager
    def _filling(self) -> Iterator[None]:
        """Writing to the work area (the data is written there once before it is stored, and converted there):
        running out of room says so, where the bare OSError would have been an unexplained failure with a traceback
        in the log. Only around those writes: a store's own full disk is the store's to report."""
        try:
            yield
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            raise StoreFull(
                "This node's import work area (in node_staging_uri) is full: the image's data could not be "
                "prepared there. Try again when there is room."
            ) from exc


def _too_large(cap: int) -> TooLarge:
    return TooLarge(f"The imported image exceeds the size limit of {cap} bytes.")


def attempt_name(image_id: str, task: Task) -> str:
    """The name an attempt writes under: unique to the task and its claim, so no two attempts share data."""
    return f"{image_id}.{task.id[:8]}.{task.generation}"


def _remove(placed: Placed) -> None:
    for data, _, where in placed:
        where.delete(data.url)


def _location(store: Store, stored: StoredData) -> Location:
    return Location(url=stored.url, metadata={"store": store.name, **stored.metadata})


def _read_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            yield chunk


def _finished(failed: Iterable[str]) -> dict[str, str]:
    """The server-kept properties of an import or copy that ended: as in Glance, no store is left importing (an
    empty string, which is what clients wait for, not a missing property) and the stores that failed, if any."""
    return {IMPORTING_TO: "", FAILED_IMPORT: ",".join(failed)}


def _task_entry(task: Task, action: str, **changes: list[Any]) -> AuditEntry:
    """An import's step as the audit log keeps it: made for the task's caller (its user; a task keeps no project
    of the caller's), under the request that started it."""
    return AuditEntry(
        action=action, target_type=IMPORT, target_id=task.image_id or "", user_id=task.user_id,
        request_id=task.request_id or "", target_project=task.owner,
        changes={"task": [None, task.id], **changes},
    )  # fmt: skip
