"""Interoperable image import, the starting side: staging (glance-direct), checking and recording an import.

An import is a task row: the API records it and answers 202; a worker thread in any API process
claims it and runs it (domain/import_runner.py). Data only ever comes in through a quota meter.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain import audit
from glimpse.domain.access import ImageAccess
from glimpse.domain.audit_entries import IMPORT
from glimpse.domain.authorization import Authorizer
from glimpse.domain.digests import Digest, digest_check
from glimpse.domain.entities import Image, Task
from glimpse.domain.image_data import ImageData, verified
from glimpse.domain.image_locations import store_ids
from glimpse.domain.import_claim import holding_name, process_name
from glimpse.domain.import_sources import ImportOptions, Sources
from glimpse.domain.inputs import check_url
from glimpse.domain.limits import Limits
from glimpse.domain.notifications import Events
from glimpse.domain.ports import ImageRepository, StoreRegistry, TaskRepository
from glimpse.domain.protections import UNPROTECTED, PropertyProtections
from glimpse.domain.quotas import QuotaService
from glimpse.domain.signatures import Signatures
from glimpse.errors import BadRequest, Conflict, NotFound, TooLarge
from glimpse.store.base import Heartbeat

log = logging.getLogger(__name__)

IMPORT_TASK = "os_glance_import_task"
IMPORTING_TO = "os_glance_importing_to_stores"
FAILED_IMPORT = "os_glance_failed_import"
SIGNING = "signing"  # the task input's record of a signed image's certificate (service bookkeeping, not shown)

__all__ = ["FAILED_IMPORT", "IMPORTING_TO", "IMPORT_TASK", "SIGNING", "ImportOptions", "ImportService"]


class ImportService:
    def __init__(
        self,
        repo: ImageRepository,
        stores: StoreRegistry,
        limits: Limits,
        quotas: QuotaService,
        uploads: ImageData,
        tasks: TaskRepository,
        policy: Authorizer,
        sources: Sources,
        node: str,
        signatures: Signatures | None = None,
        protections: PropertyProtections = UNPROTECTED,
        events: Events | None = None,
    ) -> None:
        """protections: a glance-download sets the remote image's properties as its caller (as Glance's task
        does); the operator's inject_image_metadata properties are the operator's, set whatever the caller's role."""
        self.protections = protections
        self.events = events or Events()
        self.repo = repo
        self.stores = stores
        self.limits = limits
        self.quotas = quotas
        self.uploads = uploads  # the heartbeat of a staging is an upload's
        self.tasks = tasks
        self.policy = policy
        self.access = ImageAccess(repo, policy)
        self.sources = sources
        self.staging = sources.staging
        self.options = sources.options
        self.node = node
        self.signatures = signatures or Signatures(None)

    # --- staging ---------------------------------------------------------------------------------
    def stage(
        self,
        ctx: RequestContext,
        image_id: str,
        chunks: Iterable[bytes],
        expected_size: int | None,
        declared: Sequence[Digest] = (),
    ) -> None:
        """declared: the client's Content-Digest/Repr-Digest (RFC 9530); staged data that does not match is removed."""
        if "glance-direct" not in self.options.methods:
            raise NotFound("The glance-direct import method is not enabled: nothing can be staged.")
        image = self.access.load(ctx, image_id, "upload_image")
        if image.status != "queued":
            raise Conflict(f"Image status transition from {image.status} to uploading is not allowed")
        limits = self.quotas.effective(image.owner).image_count_uploading if image.owner else None
        check = digest_check(declared, self.limits.hashing_algorithm)
        claim = self.repo.begin_upload(image_id, image.owner, self.node, limits, to_status="uploading")
        try:
            beating = Heartbeat(
                check.checked(chunks), self.uploads.upload_beat(image_id, claim), self.limits.heartbeat_every
            )
            metered = self.quotas.metered(image_id, image.owner, beating, expected_size, staging=True)
            stored = self.staging.add(
                image_id, metered, max_size=self.limits.image_size_cap, expected_size=expected_size,
                hash_algo=self.limits.hashing_algorithm,
            )  # fmt: skip
            verified(check, stored, self.staging)
        except BaseException:
            self._give_back(image_id, claim)
            raise
        try:
            # staged for good: no longer an upload in progress
            with audit.change(ctx, "image.stage", IMPORT, image_id, image.owner, staged_size=[None, stored.size]):
                self.repo.staged(image_id, claim, stored.url)
        except Conflict:
            # Deleted (or swept) meanwhile: the staged file is this staging's own, and nobody needs it.
            self.staging.delete(stored.url)
            raise

    def _give_back(self, image_id: str, claim: str) -> None:
        """A staging that failed: the image is queued again and its reservation released, if still ours."""
        try:
            self.repo.transition(image_id, "uploading", "queued", if_claim=claim, upload_node=None)
        except Conflict:
            return  # deleted or taken by another upload: its reservation is not ours to release
        self.quotas.release(image_id)

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
            self.options.egress.vet(check_url(uri, "The web-download uri"))
        pinned = None
        if name == "glance-download":
            if image.status != "queued":
                raise Conflict(f"Image {image_id} must be queued for glance-download, not {image.status}.")
            before = dict(image.properties)
            method = self.sources.prepare_remote(ctx, image, method)
            self._check_inherited(ctx, before, image.properties)
            self.repo.save(image)
            image = self.repo.get(image_id)
            pinned = process_name(self.node)  # the caller's token lives in this process only
        if not image.disk_format or not image.container_format:
            raise BadRequest("Properties disk_format, container_format must be set prior to importing data.")
        for store in stores:
            self.stores.writable(store)
        source = "uploading" if name == "glance-direct" else "queued"
        task_input = {"method": method, "stores": stores, **self._inject(ctx), **self._signing(ctx, image)}
        hold = holding_name(self.node)  # no worker runs the task before its image is importing
        task = self.tasks.create(
            "api_image_import", image.owner, image_id, task_input, ctx.user_id, ctx.request_id, pinned_node=hold
        )
        if pinned:
            self.sources.tokens.keep(task.id, ctx.auth_token)
        try:
            with audit.change(
                ctx, "image.import", IMPORT, image_id, image.owner, status=[source, "importing"],
                **_import_changes(method, stores, task.id),
            ):  # fmt: skip
                self.repo.transition(image_id, source, "importing", upload_node=None, upload_claim=None)
        except Conflict:
            self.tasks.abandon(task.id, "The image changed status before the import began.")
            self.sources.tokens.forget(task.id)
            raise
        self.repo.set_internal_properties(
            image_id, {IMPORT_TASK: task.id, IMPORTING_TO: ",".join(stores or [self.stores.default])}
        )
        self._let_run(task, hold, pinned)
        self.events.task("task.create", task)
        return task

    def _let_run(self, task: Task, hold: str, pinned: str | None) -> None:
        """The image is set up for the task: workers may claim it. If the orphan sweep gave the task up meanwhile
        (this request stalled past task_stale_after), the image is given back here too: the sweep may have come
        before the image was importing."""
        if self.tasks.release(task.id, hold, pinned):
            return
        self.sources.tokens.forget(task.id)
        image_id = task.image_id or ""
        if not task.input.get("copy"):
            try:
                self.repo.transition(image_id, "importing", "queued")
                self.quotas.release(image_id)
            except (Conflict, NotFound):
                pass  # the sweep gave it back already, or it changed or went
        with contextlib.suppress(Conflict, NotFound):
            if self.repo.get(image_id).properties.get(IMPORT_TASK) == task.id:
                self.repo.set_internal_properties(image_id, {IMPORTING_TO: ""}, remove=(IMPORT_TASK,))
        raise Conflict(f"The import of image {image_id} was given up before it began; start it again.")

    def _start_copy(self, ctx: RequestContext, image_id: str, method: dict[str, Any], stores: list[str]) -> Task:
        """copy-image: an active image's data to more stores; the image stays active meanwhile. Each new
        copy counts against the owner's quota (as Glance counts each location): checked here, reserved
        by the task."""
        image = self.access.load(ctx, image_id, "copy_image")
        if image.status != "active":
            raise Conflict(f"Image {image_id} is {image.status}: only active images are copied.")
        held = set(store_ids(self.stores, image))
        targets = [s for s in stores if s not in held]
        if not stores:
            raise BadRequest("copy-image needs 'stores' or 'all_stores'.")
        if not targets:
            raise Conflict(f"Image {image_id} is already in store(s) {', '.join(stores)}.")
        for store in targets:
            self.stores.writable(store)
        quota = self.limits.image_location_quota
        if 0 <= quota < len(image.locations) + len(targets):
            raise TooLarge(f"Maximum number of locations exceeded (limit {quota}).")
        running = image.properties.get(IMPORT_TASK)
        if running and self.tasks.get(running).status in ("pending", "processing"):
            raise Conflict(f"Image {image_id} is being imported or copied already (task {running}).")
        hold = holding_name(self.node)  # a copy that ran at once would end before its image names it
        task = self.tasks.create(
            "api_image_import", image.owner, image_id,
            {"method": method, "stores": targets, "copy": True, **self._signing(ctx, image)}, ctx.user_id,
            ctx.request_id, pinned_node=hold,
        )  # fmt: skip
        try:
            self.quotas.ensure(image_id, image.owner, (image.size or 0) * len(targets))
        except TooLarge as exc:
            self.tasks.abandon(task.id, exc.message)
            raise
        try:
            with audit.change(
                ctx, "image.import", IMPORT, image_id, image.owner, **_import_changes(method, targets, task.id)
            ):
                # Only if no other request named its task meanwhile: the check above is a read, and two copies
                # of one image started at once both passed it. (The reservation is the image's, the winner's too.)
                self.repo.set_internal_properties(
                    image.id, {IMPORT_TASK: task.id, IMPORTING_TO: ",".join(targets)}, expect={IMPORT_TASK: running}
                )
        except Conflict:
            self.tasks.abandon(task.id, "Another import or copy of the image started first.")
            raise Conflict(f"Image {image_id} is being imported or copied already.") from None
        self._let_run(task, hold, None)
        self.events.task("task.create", task)
        return task

    def _check_inherited(self, ctx: RequestContext, before: dict[str, str], after: dict[str, str]) -> None:
        """Each property a glance-download sets: an update of one the caller sees, else a creation."""
        visible = self.protections.readable(ctx, before)
        for key in after:
            if key not in before or after[key] != before[key]:
                self.protections.require(ctx, key, "update" if key in visible else "create")

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
            stores = [n for n, s in self.stores.stores.items() if not s.read_only]
        if not isinstance(stores, list) or not all(isinstance(s, str) for s in stores):
            raise BadRequest("'stores' must be a list of store ids.")
        return method, stores

    def _signing(self, ctx: RequestContext, image: Image) -> dict[str, Any]:
        """A signed image's certificate, fetched now with the caller's token: the task runs later, without it."""
        record = self.signatures.record(image, ctx.auth_token, ctx.project_id)
        return {} if record is None else {SIGNING: record}

    def _inject(self, ctx: RequestContext) -> dict[str, Any]:
        if "inject_image_metadata" not in self.options.plugins or not self.options.inject:
            return {}
        if ctx.roles & set(self.options.inject_ignore_roles):
            return {}
        return {"inject": dict(self.options.inject)}

    # --- what the legacy tasks API (domain/legacy_tasks.py) asks ---------------------------------------
    def authorize_task_creation(self, ctx: RequestContext) -> None:
        self.policy.enforce(ctx, "tasks_api_access", {"project_id": ctx.project_id})
        self.policy.enforce(ctx, "add_task", {"project_id": ctx.project_id})

    def vet_source(self, uri: str) -> None:
        """BadRequest unless the egress policy would let web-download fetch `uri`."""
        self.options.egress.vet(uri)

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


def _import_changes(method: dict[str, Any], stores: list[str], task_id: str) -> dict[str, list[Any]]:
    """What an import's audit row keeps: its method (a web-download's URI without credentials), stores and task."""
    shown = {k: audit.shown_value(k, v) for k, v in method.items() if isinstance(v, str | int | bool)}
    return {"method": [None, shown], "stores": [None, list(stores)], "task": [None, task_id]}
