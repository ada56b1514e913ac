"""The image use cases the interfaces call: read and list, create, update (JSON-patch), delete, tags, (de)activate.

Data (upload, download) lives in image_data.py and locations in image_locations.py; ImageService offers
them under one name to api/ and dashboard/ by delegation.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain import audit, deprecation, listing, patch
from glimpse.domain.access import ImageAccess
from glimpse.domain.audit_entries import IMAGE, TAG
from glimpse.domain.authorization import Authorizer, image_target, new_image_target
from glimpse.domain.digests import Digest
from glimpse.domain.entities import Image, Location
from glimpse.domain.image_data import Download, ImageData, resolve_range
from glimpse.domain.image_locations import ImageLocations, purge_recorded, store_ids
from glimpse.domain.inputs import INT32_MAX, check_int, check_properties, check_text
from glimpse.domain.limits import Limits
from glimpse.domain.notifications import Events
from glimpse.domain.ports import ImageRepository, Store, StoreRegistry
from glimpse.domain.protections import UNPROTECTED, PropertyProtections
from glimpse.domain.quotas import QuotaService
from glimpse.domain.schema import BASE_PROPERTIES, COLUMNS, DEFAULT_SCHEMA, RESERVED, RESERVED_PREFIX, ImageSchema
from glimpse.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    ImageProtected,
    NotFound,
    PolicyRefused,
    TooLarge,
)
from glimpse.store.base import check_deletable

__all__ = ["Download", "ImageService", "Limits", "resolve_range"]

log = logging.getLogger(__name__)


CREATE_FORBIDDEN = frozenset({"direct_url", "self", "file", "schema", "stores", "status", "checksum", "size",
                              "virtual_size", "created_at", "updated_at", "os_hash_algo", "os_hash_value"})  # fmt: skip
WRITABLE_COLUMNS = COLUMNS - {"id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
                              "created_at", "updated_at"}  # fmt: skip


# A delete that found the image changed under it reads it again; a change each time is a real conflict (409).
DELETE_ATTEMPTS = 3


def _within(count: int, quota: int) -> bool:
    return quota < 0 or count <= quota


class ImageService:
    def __init__(
        self,
        repo: ImageRepository,
        stores: StoreRegistry,
        limits: Limits,
        policy: Authorizer,
        quotas: QuotaService,
        data: ImageData,
        locations: ImageLocations,
        schema: ImageSchema = DEFAULT_SCHEMA,
        staging: Store | None = None,
        protections: PropertyProtections = UNPROTECTED,
        delayed_delete: bool = False,
        events: Events | None = None,
        retention: Callable[[str | None], timedelta | None] | None = None,
    ) -> None:
        """staging: where glance-direct data waits; an image deleted while staged loses its staged file.
        protections: the operator's property protections; every image this service returns to a caller
        is shown without the properties the caller may not read.
        delayed_delete: a deleted image's data stays (pending_delete) for the scrubber.
        retention: how long the recycle bin keeps a deleted image of that owner (None: not at all)."""
        self.retention = retention or (lambda owner: None)
        self.events = events or Events()
        self.staging = staging
        self.protections = protections
        self.delayed_delete = delayed_delete
        self.schema = schema
        self.quotas = quotas
        self.repo = repo
        self.stores = stores
        self.limits = limits
        self.policy = policy
        self.access = ImageAccess(repo, policy)
        self._data = data
        self._locations = locations

    # --- reading ---------------------------------------------------------------------------------
    def get(self, ctx: RequestContext, image_id: str) -> Image:
        return self._shown(ctx, self.access.load(ctx, image_id))

    def _shown(self, ctx: RequestContext, image: Image) -> Image:
        """An image as this caller sees it: without what it may not read, with its deprecation state as of now."""
        return deprecation.shown(self.protections.shown(ctx, image), deprecation.utcnow())

    def list(self, ctx: RequestContext, params: Mapping[str, Sequence[str]]) -> tuple[list[Image], bool]:
        """A page of images and whether another page follows."""
        self.policy.enforce(ctx, "get_images", {"project_id": ctx.project_id})
        query = listing.parse_query(
            params, ctx, default_limit=self.limits.limit_param_default, max_limit=self.limits.api_limit_max
        )
        if query.marker is not None:
            try:
                self.get(ctx, query.marker)  # a marker the caller cannot see is as unknown as a missing one
            except NotFound as exc:
                raise BadRequest(exc.message) from None
        if any(not self.protections.allows(ctx, key, "read") for key in query.properties):
            return [], False  # no image has a property this caller may not read: its values tell nothing
        wanted = query.limit
        query.limit = wanted + 1
        images = self.repo.list(query)
        shown, now = self.protections.shown_all(ctx, images[:wanted]), deprecation.utcnow()
        return [deprecation.shown(image, now) for image in shown], len(images) > wanted

    def property_permissions(self, ctx: RequestContext, names: Iterable[str]) -> dict[str, dict[str, bool]]:
        """What the caller may do (create, read, update, delete) with each named extra property."""
        return self.protections.permissions(ctx, names)

    def _modifiable(self, ctx: RequestContext, image_id: str, rule: str = "modify_image") -> Image:
        return self.access.load(ctx, image_id, rule)

    # --- metadata ----------------------------------------------------------------------------------
    def create(self, ctx: RequestContext, body: Any) -> Image:
        if not isinstance(body, dict):
            raise BadRequest("Request body must be a JSON object describing the image.")
        for key in body:
            if key in CREATE_FORBIDDEN:
                raise Forbidden(f"Attribute '{key}' is read-only.")
            if key in RESERVED or key.startswith(RESERVED_PREFIX) or key == "locations":
                raise Forbidden(f"Attribute '{key}' is reserved.")
        self.schema.validate(body)
        image_id = body.get("id") or str(uuid.uuid4())
        owner = body.get("owner", ctx.project_id)
        if isinstance(owner, str):
            check_text(owner, "The owner")
        if not self.policy.check(ctx, "add_image", new_image_target(owner, body.get("visibility", "shared"))):
            if owner != ctx.project_id:
                raise Forbidden(f"You are not permitted to create images owned by '{owner}'.")
            raise PolicyRefused("add_image")
        for key in body:
            if key not in BASE_PROPERTIES:  # a null one too, as Glance asks of every extra property given
                self.protections.require(ctx, key, "create")
        image = Image(id=image_id.lower(), owner=owner)
        self._apply(ctx, image, {**body, "tags": body.get("tags", [])}, creating=True)
        max_images = self.quotas.effective(owner).image_count_total if owner else None
        with audit.image_change(ctx, "image.create", None, image):
            added = self.repo.add(image, max_images=max_images)
        self.events.image("image.create", added)
        return self._shown(ctx, added)

    def update(self, ctx: RequestContext, image_id: str, body: Any, media_type: str) -> Image:
        changes = patch.parse_changes(body, media_type)
        image = self._modifiable(ctx, image_id)
        before = copy.deepcopy(image)
        # The caller changes what it can see; what it cannot is kept as it is (an add may create it anew).
        hidden = self.protections.hidden(ctx, image.properties)
        shown = {k: v for k, v in self._document(image).items() if k not in hidden}
        current = deprecation.state(image.properties, deprecation.utcnow())
        if current is not None:  # the caller patches the image it saw, computed state included
            shown[deprecation.STATUS] = current

        def guard(name: str, op: str) -> None:
            self.protections.require(ctx, name, op)

        doc = {**hidden, **patch.apply_changes(shown, changes, media_type, guard)}
        changed = {change.path[0] for change in changes}  # a null the caller sets is validated like any value
        self.schema.validate(
            {k: v for k, v in doc.items() if not (k not in BASE_PROPERTIES and v is None and k not in changed)}
        )
        self._apply(ctx, image, doc, creating=False)
        with audit.image_change(ctx, "image.update", before, image):
            saved = self.repo.save(image)
        self.events.image("image.update", saved)
        return self._shown(ctx, saved)

    @staticmethod
    def _document(image: Image) -> dict[str, Any]:
        doc: dict[str, Any] = {k: getattr(image, k) for k in WRITABLE_COLUMNS}
        doc["tags"] = list(image.tags)
        doc.update(image.properties)
        return doc

    def _apply(self, ctx: RequestContext, image: Image, doc: dict[str, Any], creating: bool) -> None:
        """Set the writable attributes from doc, enforcing the rules that go beyond the schema."""
        new_visibility = doc.get("visibility") or image.visibility
        if new_visibility != image.visibility or creating:
            rule = {"public": "publicize_image", "community": "communitize_image"}.get(new_visibility)
            if rule is not None:
                self.policy.enforce(ctx, rule, image_target(image))
        if not creating and doc.get("owner", image.owner) != image.owner and not ctx.is_admin:
            raise Forbidden("Owner can't be updated by non admin.")
        # A null extra property (kernel_id and ramdisk_id may be null) is no property at all.
        properties = {k: v for k, v in doc.items() if k not in BASE_PROPERTIES and k != "id" and v is not None}
        properties = deprecation.normalized(
            image.id, image.properties, properties, deprecation.utcnow(), lambda other: self.access.load(ctx, other)
        )
        tags = doc.get("tags") or []
        if not _within(len(properties), self.limits.image_property_quota):
            raise TooLarge(f"Maximum number of properties exceeded (limit {self.limits.image_property_quota}).")
        if not _within(len(set(tags)), self.limits.image_tag_quota):
            raise TooLarge(f"Maximum number of tags exceeded (limit {self.limits.image_tag_quota}).")
        check_properties(properties, self.limits.image_property_value_max_length)
        for tag in tags:
            check_text(tag, "A tag")
        for key in WRITABLE_COLUMNS:
            if key in doc:
                value = doc[key]
                if isinstance(value, str):
                    check_text(value, f"Attribute {key}")
                if key in ("protected", "os_hidden"):
                    value = bool(value)
                elif key in ("min_disk", "min_ram"):
                    value = check_int(value or 0, key, INT32_MAX)
                elif key == "visibility":
                    value = value or image.visibility
                setattr(image, key, value)
        image.tags = list(dict.fromkeys(tags))
        image.properties = properties

    def delete(self, ctx: RequestContext, image_id: str) -> None:
        image, purged, binned = self._delete_current(ctx, image_id)
        for location in purged:
            purge_recorded(self.stores, self.repo, image_id, location)
        # Glance: pending_delete when delayed delete keeps the data, deleted when there was none to keep; the
        # recycle bin keeps every image, queued ones too.
        kept = binned or (self.delayed_delete and image.status != "queued")
        self.events.image_deleted(image, status="pending_delete" if kept else "deleted")
        if self.staging is not None:  # staged (or being staged): nothing will import it now
            self.staging.delete(self.staging.url_for(image_id))
        self._data.forget_cached(image_id)

    def _delete_current(self, ctx: RequestContext, image_id: str) -> tuple[Image, builtins.list[Location], bool]:
        """Delete the image as it is now: checked, then deleted only if unchanged since (a compare-and-swap).

        A change in between (typically an upload the client just cancelled going back to queued) is not the caller's
        concern: the image is read and checked again, and the delete retried; Glance deletes it too."""
        for attempt in range(1, DELETE_ATTEMPTS + 1):
            image = self._modifiable(ctx, image_id, "delete_image")
            if image.protected:
                raise ImageProtected(image_id)
            for location in image.locations:  # data others still use (Ceph clones) keeps its image: 409
                check_deletable(self.stores.for_location(location.url, location.metadata), location.url)
            status = "pending_delete" if self.delayed_delete and image.status != "queued" else "deleted"
            try:
                # Refused when protected or changed meanwhile; the quota reservation goes in the same transaction.
                keep_for = self.retention(image.owner)
                gone: dict[str, list[Any]] = {"status": [image.status, status], "name": [image.name, None]}
                with audit.change(ctx, "image.delete", IMAGE, image_id, image.owner, **gone):
                    removed = self.repo.delete(image_id, image.revision, delayed=self.delayed_delete, keep_for=keep_for)
                return image, removed, keep_for is not None
            except Conflict:
                if attempt == DELETE_ATTEMPTS:
                    raise
                log.info("Image %s changed while being deleted; deleting it as it is now", image_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def add_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        if len(tag) > 255:
            raise BadRequest("Tag is longer than 255 characters.")
        check_text(tag, "A tag")
        image = self._modifiable(ctx, image_id)
        if tag in image.tags:
            return
        if not _within(len(image.tags) + 1, self.limits.image_tag_quota):
            raise TooLarge(f"Maximum number of tags exceeded (limit {self.limits.image_tag_quota}).")
        image.tags.append(tag)
        with audit.change(ctx, "image.tag.add", TAG, image_id, image.owner, tag=[None, tag]):
            saved = self.repo.save(image)
        self.events.image("image.update", saved)

    def remove_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        image = self._modifiable(ctx, image_id)
        if tag not in image.tags:
            raise NotFound(f"Tag {tag} not found on image {image_id}.")
        image.tags.remove(tag)
        with audit.change(ctx, "image.tag.remove", TAG, image_id, image.owner, tag=[tag, None]):
            saved = self.repo.save(image)
        self.events.image("image.update", saved)

    def deactivate(self, ctx: RequestContext, image_id: str) -> None:
        self._toggle(ctx, image_id, "active", "deactivated")

    def reactivate(self, ctx: RequestContext, image_id: str) -> None:
        self._toggle(ctx, image_id, "deactivated", "active")

    def _toggle(self, ctx: RequestContext, image_id: str, source: str, target: str) -> None:
        verb = "deactivate" if target == "deactivated" else "reactivate"
        image = self._modifiable(ctx, image_id, verb)
        if image.status == target:
            return
        if image.status != source:
            raise Forbidden(f"Not allowed to {verb} image in status '{image.status}'")
        with audit.change(ctx, f"image.{verb}", IMAGE, image_id, image.owner, status=[source, target]):
            self.repo.transition(image_id, source, target)
        if target == "deactivated":
            self._data.forget_cached(image_id)
        if self.events.wants("image.update"):
            with contextlib.suppress(NotFound):  # deleted meanwhile: image.delete tells
                self.events.image("image.update", self.repo.get(image_id))

    # --- data and locations: use cases of their own modules, offered here to the interfaces ------------
    def upload(
        self,
        ctx: RequestContext,
        image_id: str,
        chunks: Iterable[bytes],
        expected_size: int | None = None,
        store_name: str | None = None,
        declared: Sequence[Digest] = (),
    ) -> Image:
        return self._data.upload(ctx, image_id, chunks, expected_size, store_name, declared)

    def download(
        self, ctx: RequestContext, image_id: str, byte_range: tuple[int | None, int | None] | None
    ) -> Download:
        return self._data.download(ctx, image_id, byte_range)

    def recover(self) -> int:
        return self._data.recover()

    def locations(self, ctx: RequestContext, image_id: str) -> builtins.list[Location]:
        return self._locations.locations(ctx, image_id)

    def add_location(self, ctx: RequestContext, image_id: str, body: Any) -> None:
        self._locations.add_location(ctx, image_id, body)

    def store_ids(self, image: Image) -> builtins.list[str]:
        return store_ids(self.stores, image)

    def delete_from_store(self, ctx: RequestContext, store_id: str, image_id: str) -> None:
        self._locations.delete_from_store(ctx, store_id, image_id)
