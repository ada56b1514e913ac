"""Interoperable image import: stage then import (glance-direct), web-download, and the tasks that run them.

An import is a task row: the API records it and answers 202; a worker thread in any API process
claims it, runs it and records the outcome. A process that dies mid-import stops beating; its tasks
are taken over (resumed from the staged data or downloaded again) by the next process that looks,
so an image never stays `importing` for good.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.db.records import Image, Location
from glimpse.db.repositories import ImageRepository
from glimpse.db.tasks import Task, TaskRepository
from glimpse.domain.access import ImageAccess
from glimpse.domain.authorization import Authorizer
from glimpse.domain.inputs import check_url, check_uuid
from glimpse.domain.service import ImageService
from glimpse.errors import BadRequest, Conflict, GlimpseError, NotFound, TooLarge
from glimpse.formats import conversion
from glimpse.formats.inspection import FormatGuard
from glimpse.sources import remote_glance
from glimpse.sources.web import UrlFilter
from glimpse.store.base import Heartbeat, Store, StoredData

log = logging.getLogger(__name__)

IMPORT_TASK = "os_glance_import_task"
IMPORTING_TO = "os_glance_importing_to_stores"
FAILED_IMPORT = "os_glance_failed_import"
STALE_AFTER = timedelta(seconds=60)
HEARTBEAT_EVERY = 5 * 1024 * 1024  # bytes between heartbeats


@dataclass(frozen=True)
class ImportOptions:
    methods: tuple[str, ...]
    url_filter: UrlFilter = field(default_factory=UrlFilter)
    plugins: tuple[str, ...] = ()  # image_conversion, image_decompression, inject_image_metadata
    conversion_format: str = "raw"
    inject: dict[str, str] = field(default_factory=dict)
    inject_ignore_roles: tuple[str, ...] = ("admin",)
    remote_endpoints: dict[str, str] = field(default_factory=dict)  # region -> URL when there is no catalog
    download_properties: tuple[str, ...] = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")


class ImportService:
    def __init__(
        self,
        images: ImageService,
        tasks: TaskRepository,
        policy: Authorizer,
        staging: Store,
        scratch: Path,
        options: ImportOptions,
        node: str,
        download: Callable[[str, UrlFilter], Iterator[bytes]],
    ) -> None:
        self.images = images
        self.repo: ImageRepository = images.repo
        self.tasks = tasks
        self.policy = policy
        self.access = ImageAccess(images.repo, policy)
        self.staging = staging
        self.scratch = scratch
        self.options = options
        self.node = node
        self.download = download
        # Callers' tokens for glance-download, kept in memory only: never written to the database.
        self._tokens: dict[str, str | None] = {}

    # --- staging ---------------------------------------------------------------------------------
    def stage(self, ctx: RequestContext, image_id: str, chunks: Iterable[bytes], expected_size: int | None) -> None:
        if "glance-direct" not in self.options.methods:
            raise NotFound("The glance-direct import method is not enabled: nothing can be staged.")
        image = self.access.load(ctx, image_id, "upload_image")
        if image.status != "queued":
            raise Conflict(f"Image status transition from {image.status} to uploading is not allowed")
        limits = self.images.quotas.effective(image.owner).image_count_uploading if image.owner else None
        self.repo.begin_upload(image_id, image.owner, self.node, limits, to_status="uploading")
        try:
            beating = Heartbeat(
                chunks, lambda: self.repo.upload_heartbeat(image_id, self.node), self.images.limits.heartbeat_every
            )
            metered = self.images.quotas.metered(image_id, image.owner, beating, expected_size, staging=True)
            stored = self.staging.add(
                image_id, metered, max_size=self.images.limits.image_size_cap, expected_size=expected_size,
                hash_algo=self.images.limits.hashing_algorithm,
            )  # fmt: skip
        except BaseException:
            self.images.quotas.release(image_id)
            self._restore(image_id, "uploading")
            raise
        self.repo.set_internal_properties(image_id, {"os_glance_stage_url": stored.url})
        self.repo.staged(image_id)  # staged for good: no longer an upload in progress

    def _restore(self, image_id: str, status: str) -> None:
        try:
            self.repo.transition(image_id, status, "queued", upload_node=None)
        except Conflict:
            pass

    # --- starting an import ------------------------------------------------------------------------
    def start(self, ctx: RequestContext, image_id: str, body: Any) -> Task:
        method, stores = self._parse(body)
        if method["name"] == "copy-image":
            return self._start_copy(ctx, image_id, method, stores)
        image = self.access.load(ctx, image_id, "modify_image")
        name = method["name"]
        if name == "glance-direct" and image.status != "uploading":
            raise Conflict(f"Image {image_id} has no staged data (status {image.status}): stage it first.")
        if name == "web-download":
            if image.status != "queued":
                raise Conflict(f"Image {image_id} must be queued for web-download, not {image.status}.")
            uri = method.get("uri")
            if not isinstance(uri, str) or not uri:
                raise BadRequest("web-download needs a 'uri'.")
            self.options.url_filter.check(check_url(uri, "The web-download uri"))
        if name == "glance-download":
            if image.status != "queued":
                raise Conflict(f"Image {image_id} must be queued for glance-download, not {image.status}.")
            method = self._prepare_remote(ctx, image, method)
            image = self.repo.get(image_id)
        if not image.disk_format or not image.container_format:
            raise BadRequest("Properties disk_format, container_format must be set prior to importing data.")
        for store in stores:
            self.images.stores.writable(store)
        source = "uploading" if name == "glance-direct" else "queued"
        task = self.tasks.create(
            "api_image_import", image.owner, image_id, {"method": method, "stores": stores, **self._inject(ctx)},
            ctx.user_id, ctx.request_id,
        )  # fmt: skip
        if name == "glance-download":
            self._tokens[task.id] = ctx.auth_token
        try:
            self.repo.transition(image_id, source, "importing", upload_node=None)
        except Conflict:
            self.tasks.abandon(task.id, "The image changed status before the import began.")
            raise
        self.repo.set_internal_properties(
            image_id, {IMPORT_TASK: task.id, IMPORTING_TO: ",".join(stores or [self.images.stores.default])}
        )
        return task

    def _start_copy(self, ctx: RequestContext, image_id: str, method: dict[str, Any], stores: list[str]) -> Task:
        """copy-image: an active image's data to more stores; the image stays active meanwhile."""
        image = self.access.load(ctx, image_id, "copy_image")
        if image.status != "active":
            raise Conflict(f"Image {image_id} is {image.status}: only active images are copied.")
        held = set(self.images.store_ids(image))
        targets = [s for s in stores if s not in held]
        if not stores:
            raise BadRequest("copy-image needs 'stores' or 'all_stores'.")
        if not targets:
            raise Conflict(f"Image {image_id} is already in store(s) {', '.join(stores)}.")
        for store in targets:
            self.images.stores.writable(store)
        quota = self.images.limits.image_location_quota
        if 0 <= quota < len(image.locations) + len(targets):
            raise TooLarge(f"Maximum number of locations exceeded (limit {quota}).")
        running = image.properties.get(IMPORT_TASK)
        if running and self.tasks.get(running).status in ("pending", "processing"):
            raise Conflict(f"Image {image_id} is being imported or copied already (task {running}).")
        task = self.tasks.create(
            "api_image_import", image.owner, image_id, {"method": method, "stores": targets, "copy": True},
            ctx.user_id, ctx.request_id,
        )  # fmt: skip
        self.repo.set_internal_properties(image_id, {IMPORT_TASK: task.id, IMPORTING_TO: ",".join(targets)})
        return task

    def _run_copy(self, task: Task, progress: _Progress) -> dict[str, Any]:
        image = self.repo.get(task.image_id or "")
        if image.status != "active":
            raise Conflict(f"Image {image.id} is {image.status}: copying stopped.")
        copied, failed = [], []
        with tempfile.TemporaryDirectory(dir=self._workdir()) as tmp:
            local = Path(tmp) / "source"
            self._write(progress.count(self._current_data(image)), local)
            for name in task.input["stores"]:
                store = self.images.stores.writable(name)
                try:
                    stored, _ = self._store(image, store, local, image.disk_format or "raw", progress)
                    if stored.hash_value != image.os_hash_value:
                        store.delete(stored.url)
                        raise BadRequest(f"The copy in {name} does not match the image's os_hash_value.")
                    self.repo.add_location(image.id, _location(store, stored), size=image.size, checksum=image.checksum)
                    copied.append(name)
                except GlimpseError as exc:
                    log.warning("Copying image %s to %s failed: %s", image.id, name, exc)
                    if task.input.get("all_stores_must_succeed", True):
                        raise
                    failed.append(name)
        properties = {FAILED_IMPORT: ",".join(failed)} if failed else {}
        self.repo.set_internal_properties(image.id, properties, remove=(IMPORT_TASK, IMPORTING_TO))
        return {"image_id": image.id, "stores": ",".join(copied)}

    def _current_data(self, image: Image) -> Iterable[bytes]:
        for location in self.images.stores.by_weight(image.locations):
            try:
                return self.images.stores.for_location(location.url, location.metadata).get(location.url)
            except GlimpseError:
                continue
        raise NotFound(f"Image {image.id} has no readable data to copy.")

    def _prepare_remote(self, ctx: RequestContext, image: Image, method: dict[str, Any]) -> dict[str, Any]:
        """Look the remote image up with the caller's token and let the local image inherit its metadata."""
        remote_id = method.get("glance_image_id")
        region = method.get("glance_region")
        if not isinstance(remote_id, str) or not isinstance(region, str):
            raise BadRequest("glance-download needs 'glance_image_id' and 'glance_region'.")
        check_uuid(remote_id, "glance_image_id")  # it becomes part of the remote image's URL
        interface = method.get("glance_service_interface") or "public"
        endpoint = remote_glance.find_endpoint(ctx.service_catalog, self.options.remote_endpoints, region, interface)
        remote = remote_glance.remote_image(endpoint, remote_id, ctx.auth_token)
        inherited = remote_glance.inherited_metadata(remote, self.options.download_properties)
        columns = {k: v for k, v in inherited.items() if k in remote_glance.INHERITED}
        for key, value in columns.items():
            setattr(image, key, value)
        image.properties.update({k: v for k, v in inherited.items() if k not in columns})
        self.repo.save(image)
        return {
            **method,
            "endpoint": endpoint,
            "expect": remote.get("os_hash_value"),
            "algo": remote.get("os_hash_algo"),
        }

    def _parse(self, body: Any) -> tuple[dict[str, Any], list[str]]:
        if not isinstance(body, dict) or not isinstance(body.get("method"), dict):
            raise BadRequest('Import needs a body {"method": {"name": ...}}.')
        method = body["method"]
        if method.get("name") not in self.options.methods:
            raise BadRequest(f"Import method {method.get('name')} is not one of {', '.join(self.options.methods)}.")
        for flag in ("all_stores", "all_stores_must_succeed"):
            if flag in body and not isinstance(body[flag], bool):
                raise BadRequest(f"'{flag}' must be true or false.")
        if body.get("all_stores") and body.get("stores"):
            raise BadRequest("'stores' and 'all_stores' cannot be given together.")
        stores = body.get("stores") or []
        if body.get("all_stores"):
            stores = [n for n, s in self.images.stores.stores.items() if not s.read_only]
        if not isinstance(stores, list) or not all(isinstance(s, str) for s in stores):
            raise BadRequest("'stores' must be a list of store ids.")
        return method, stores

    def _inject(self, ctx: RequestContext) -> dict[str, Any]:
        if "inject_image_metadata" not in self.options.plugins or not self.options.inject:
            return {}
        if ctx.roles & set(self.options.inject_ignore_roles):
            return {}
        return {"inject": dict(self.options.inject)}

    # --- reading tasks ------------------------------------------------------------------------------
    def image_tasks(self, ctx: RequestContext, image_id: str) -> list[Task]:
        image = self.access.load(ctx, image_id)
        return self.tasks.list(image_id=image.id)

    def get_task(self, ctx: RequestContext, task_id: str) -> Task:
        self.policy.enforce(ctx, "tasks_api_access", {"project_id": ctx.project_id})
        task = self.tasks.get(task_id)
        self.policy.enforce(ctx, "get_task", {"project_id": task.owner})
        return task

    def list_tasks(self, ctx: RequestContext, status: str | None, task_type: str | None, limit: int) -> list[Task]:
        self.policy.enforce(ctx, "tasks_api_access", {"project_id": ctx.project_id})
        self.policy.enforce(ctx, "get_tasks", {"project_id": ctx.project_id})
        owner = None if ctx.is_admin else ctx.project_id
        return self.tasks.list(owner=owner, status=status, task_type=task_type, limit=limit)

    # --- running ----------------------------------------------------------------------------------
    def run_one(self, worker: str) -> bool:
        """Claim and run one task; False when there was nothing to do."""
        task = self.tasks.claim(worker, STALE_AFTER)
        if task is None:
            return False
        try:
            result = self._run(task, worker)
        except GlimpseError as exc:
            self._fail(task, worker, exc.message)
        except Exception as exc:  # a task must end, whatever happened inside it
            log.exception("Import task %s failed", task.id)
            self._fail(task, worker, f"Import failed: {exc}")
        else:
            self.tasks.finish(task.id, worker, "success", "Import complete", result)
        finally:
            self._tokens.pop(task.id, None)
        return True

    def _fail(self, task: Task, worker: str, message: str) -> None:
        image_id = task.image_id or ""
        if not task.input.get("copy"):
            self._restore(image_id, "importing")
        self.images.quotas.release(image_id)
        try:
            self.repo.set_internal_properties(image_id, {FAILED_IMPORT: ",".join(task.input.get("stores") or [])},
                                              remove=(IMPORT_TASK, IMPORTING_TO))  # fmt: skip
        except GlimpseError:
            pass
        self._drop_staged(image_id)
        self.tasks.finish(task.id, worker, "failure", message, {})

    def sweep_abandoned(self, older_than: timedelta) -> int:
        """Uploads and stagings whose process died go back to queued, wherever their partial data is."""
        return self.images.sweep_abandoned(older_than, extra_stores=[self.staging])

    def _drop_staged(self, image_id: str) -> None:
        self.staging.delete(self._staged_url(image_id))

    def _workdir(self) -> Path:
        """This node's scratch folder (cleared when the node starts)."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        return self.scratch

    def _staged_url(self, image_id: str) -> str:
        return self.staging.url_for(image_id)

    def _run(self, task: Task, worker: str) -> dict[str, Any]:
        if task.input.get("copy"):
            return self._run_copy(task, _Progress(lambda message: self.tasks.heartbeat(task.id, worker, message)))
        image = self.repo.get(task.image_id or "")
        if image.status != "importing":
            raise Conflict(f"Image {image.id} is {image.status}, no longer importing.")
        method = task.input["method"]
        progress = _Progress(lambda message: self.tasks.heartbeat(task.id, worker, message))
        with tempfile.TemporaryDirectory(dir=self._workdir()) as tmp:
            work = Path(tmp)
            local = work / "source"
            source = self._source(image, method, task.id)
            self._write(progress.count(source), local)
            disk_format, container_format, local = self._prepare(image, local, work)
            targets = task.input.get("stores") or [self.images.stores.default]
            placed, failed = self._store_all(task, image, targets, local, disk_format, progress)
        stored, verdict, store = placed[0]
        expected = method.get("expect")
        if expected and method.get("algo") == stored.hash_algo and expected != stored.hash_value:
            for data, _, where in placed:
                where.delete(data.url)
            raise BadRequest("The downloaded data does not match the remote image's os_hash_value.")
        values: dict[str, Any] = dict(
            size=stored.size, checksum=stored.checksum, os_hash_algo=stored.hash_algo,
            os_hash_value=stored.hash_value, virtual_size=verdict, disk_format=disk_format,
            container_format=container_format,
        )  # fmt: skip
        try:
            self.repo.activate(image.id, "importing", _location(store, stored), **values)
            for extra_stored, _, extra_store in placed[1:]:
                self.repo.add_location(
                    image.id, _location(extra_store, extra_stored), size=stored.size, checksum=stored.checksum
                )
        except Conflict:
            for data, _, where in placed:
                where.delete(data.url)
            raise Conflict(f"Image {image.id} was deleted during its import; its data was removed.") from None
        properties = dict(task.input.get("inject", {}))
        if failed:
            properties[FAILED_IMPORT] = ",".join(failed)
        self.repo.set_internal_properties(image.id, properties, remove=(IMPORT_TASK, IMPORTING_TO))
        self._drop_staged(image.id)
        return {"image_id": image.id, "stores": ",".join(where.name for _, _, where in placed)}

    def _store_all(self, task: Task, image: Image, targets: list[str], local: Path, disk_format: str,
                   progress: _Progress) -> tuple[list[tuple[StoredData, int | None, Store]], list[str]]:  # fmt: skip
        """Write to every target store; a failure fails all unless all_stores_must_succeed is false."""
        must_succeed = task.input.get("all_stores_must_succeed", True)
        placed: list[tuple[StoredData, int | None, Store]] = []
        failed: list[str] = []
        for name in targets:
            store = self.images.stores.writable(name)
            try:
                stored, verdict = self._store(image, store, local, disk_format, progress)
            except GlimpseError as exc:
                if must_succeed or isinstance(exc, BadRequest):  # a refused image is refused everywhere
                    for data, _, where in placed:
                        where.delete(data.url)
                    raise
                failed.append(name)
                continue
            placed.append((stored, verdict, store))
        if not placed:
            raise GlimpseError(f"The import failed on every store: {', '.join(failed)}.")
        return placed, failed

    def _needs_token(self, method: dict[str, Any]) -> bool:
        return method.get("glance_region") not in self.options.remote_endpoints

    def _source(self, image: Image, method: dict[str, Any], task_id: str) -> Iterable[bytes]:
        if method["name"] == "glance-direct":
            try:
                return self.staging.get(self._staged_url(image.id))
            except NotFound:
                raise NotFound(f"The staged data of image {image.id} is gone; stage it again.") from None
        if method["name"] == "web-download":
            return self.download(method["uri"], self.options.url_filter)
        if method["name"] == "glance-download":
            if task_id not in self._tokens and self._needs_token(method):
                raise Conflict("The caller's token is gone (the server restarted): start the import again.")
            return remote_glance.download(method["endpoint"], method["glance_image_id"], self._tokens.get(task_id))
        raise BadRequest(f"Import method {method['name']} is not supported.")

    def _write(self, chunks: Iterable[bytes], path: Path) -> None:
        written = 0
        cap = self.images.limits.image_size_cap
        with open(path, "wb") as out:
            for chunk in chunks:
                written += len(chunk)
                if written > cap:
                    raise BadRequest(f"The imported image exceeds the size limit of {cap} bytes.")
                out.write(chunk)

    def _prepare(self, image: Image, local: Path, work: Path) -> tuple[str, str, Path]:
        """Unpack and convert as the operator's plugins say; every step checks the format first."""
        disk_format, container_format = image.disk_format or "raw", image.container_format or "bare"
        if container_format == "compressed" and "image_decompression" in self.options.plugins:
            unpacked = work / "unpacked"
            conversion.decompress(local, unpacked, self.images.limits.image_size_cap)
            local, container_format = unpacked, "bare"
        target = self.options.conversion_format
        if "image_conversion" in self.options.plugins and disk_format != target:
            self._inspect_file(local, disk_format)  # qemu-img only ever sees data that passed the inspector
            converted = work / "converted"
            conversion.convert(local, disk_format, target, converted)
            local, disk_format = converted, target
        return disk_format, container_format, local

    def _inspect_file(self, path: Path, disk_format: str) -> int | None:
        guard = FormatGuard(_read_file(path), disk_format, self.images.format_rules)
        for _ in guard:
            pass
        return guard.verdict.virtual_size if guard.verdict else None

    def _store(self, image: Image, store: Store, local: Path, disk_format: str, progress: _Progress
               ) -> tuple[StoredData, int | None]:  # fmt: skip
        guard = FormatGuard(progress.count(_read_file(local)), disk_format, self.images.format_rules)
        stored = store.add(
            image.id, guard, max_size=self.images.limits.image_size_cap, expected_size=None,
            hash_algo=self.images.limits.hashing_algorithm,
        )  # fmt: skip
        return stored, guard.verdict.virtual_size if guard.verdict else None

    def recover(self) -> int:
        """This process's tasks from before a restart go back to pending; the staging of dead uploads goes."""
        released = self.tasks.release_node_prefix(self.node + "/")
        for image_id in self.repo.ids_in_status_on("uploading", self.node):
            self._restore(image_id, "uploading")
            self.images.quotas.release(image_id)
        self.staging.recover(self.node)
        shutil.rmtree(self._workdir(), ignore_errors=True)
        return released


class _Progress:
    """Counts bytes through the pipeline and beats the task's heartbeat with a progress message."""

    def __init__(self, beat: Callable[[str], bool]) -> None:
        self._beat = beat
        self._done = 0
        self._next = HEARTBEAT_EVERY

    def count(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self._done += len(chunk)
            if self._done >= self._next:
                self._next += HEARTBEAT_EVERY
                if not self._beat(f"Copied {self._done // (1024 * 1024)} MiB"):
                    raise Conflict("Another process took this import over.")
            yield chunk


def _location(store: Store, stored: StoredData) -> Location:
    return Location(url=stored.url, metadata={"store": store.name, **stored.metadata})


def _read_file(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            yield chunk
