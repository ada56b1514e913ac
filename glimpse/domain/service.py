"""The image use cases: create, read, list, update, delete, upload, download, (de)activate, tags."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.db.records import Image, Location
from glimpse.db.repositories import ImageRepository
from glimpse.domain import listing, patch
from glimpse.domain.access import ImageAccess
from glimpse.domain.authorization import Authorizer, image_target, new_image_target
from glimpse.domain.inputs import INT32_MAX, check_hash_value, check_int, check_properties, check_text, check_url
from glimpse.domain.quotas import QuotaService
from glimpse.domain.schema import BASE_PROPERTIES, COLUMNS, DEFAULT_SCHEMA, RESERVED, RESERVED_PREFIX, ImageSchema
from glimpse.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    RangeNotSatisfiable,
    StoreError,
    StoreUnavailable,
    TooLarge,
)
from glimpse.formats.inspection import FormatGuard, FormatRules
from glimpse.logsafe import redact_url
from glimpse.store.base import HashingMeter, Heartbeat, Store, StoredData, check_deletable
from glimpse.store.registry import StoreRegistry

log = logging.getLogger(__name__)


CREATE_FORBIDDEN = frozenset({"direct_url", "self", "file", "schema", "stores", "status", "checksum", "size",
                              "virtual_size", "created_at", "updated_at", "os_hash_algo", "os_hash_value"})  # fmt: skip
WRITABLE_COLUMNS = COLUMNS - {"id", "status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size",
                              "created_at", "updated_at"}  # fmt: skip


@dataclass(frozen=True)
class Limits:
    image_size_cap: int
    image_property_quota: int
    image_tag_quota: int
    limit_param_default: int
    api_limit_max: int
    hashing_algorithm: str
    heartbeat_every: float = 10.0  # seconds between an upload's signs of life
    image_location_quota: int = 10
    image_property_value_max_length: int = 65535


@dataclass(frozen=True)
class Download:
    image: Image
    chunks: Iterator[bytes]
    start: int
    length: int


def _within(count: int, quota: int) -> bool:
    return quota < 0 or count <= quota


class ImageService:
    def __init__(
        self,
        repo: ImageRepository,
        stores: StoreRegistry,
        limits: Limits,
        node: str,
        policy: Authorizer,
        quotas: QuotaService,
        schema: ImageSchema = DEFAULT_SCHEMA,
        format_rules: FormatRules | None = None,
        staging: Store | None = None,
    ) -> None:
        """staging: where glance-direct data waits; an image deleted while staged loses its staged file."""
        self.staging = staging
        self.schema = schema
        self.format_rules = format_rules or FormatRules()
        self.quotas = quotas
        self.repo = repo
        self.stores = stores
        self.limits = limits
        self.node = node
        self.policy = policy
        self.access = ImageAccess(repo, policy)

    # --- reading ---------------------------------------------------------------------------------
    def get(self, ctx: RequestContext, image_id: str) -> Image:
        return self.access.load(ctx, image_id)

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
        wanted = query.limit
        query.limit = wanted + 1
        images = self.repo.list(query)
        return images[:wanted], len(images) > wanted

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
            raise Forbidden("You are not authorized to complete add_image action.")
        image = Image(id=image_id.lower(), owner=owner)
        self._apply(ctx, image, {**body, "tags": body.get("tags", [])}, creating=True)
        max_images = self.quotas.effective(owner).image_count_total if owner else None
        return self.repo.add(image, max_images=max_images)

    def update(self, ctx: RequestContext, image_id: str, body: Any, media_type: str) -> Image:
        changes = patch.parse_changes(body, media_type)
        image = self._modifiable(ctx, image_id)
        doc = patch.apply_changes(self._document(image), changes, media_type)
        changed = {change.path[0] for change in changes}  # a null the caller sets is validated like any value
        self.schema.validate(
            {k: v for k, v in doc.items() if not (k not in BASE_PROPERTIES and v is None and k not in changed)}
        )
        self._apply(ctx, image, doc, creating=False)
        return self.repo.save(image)

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
        image = self._modifiable(ctx, image_id, "delete_image")
        if image.protected:
            raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
        for location in image.locations:  # data others still use (Ceph clones) keeps its image: 409
            check_deletable(self.stores.for_location(location.url, location.metadata), location.url)
        # Refused when protected or changed meanwhile; the image's quota reservation goes in the same transaction.
        for location in self.repo.delete(image_id, image.revision):
            self._purge(location)
        if self.staging is not None:  # staged (or being staged): nothing will import it now
            self.staging.delete(self.staging.url_for(image_id))

    def _purge(self, location: Location) -> None:
        try:
            self.stores.for_location(location.url, location.metadata).delete(location.url)
        except StoreError:
            log.exception("Could not delete image data at %s; it is left for the scrubber.", redact_url(location.url))

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
        self.repo.save(image)

    def remove_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        image = self._modifiable(ctx, image_id)
        if tag not in image.tags:
            raise NotFound(f"Tag {tag} not found on image {image_id}.")
        image.tags.remove(tag)
        self.repo.save(image)

    def deactivate(self, ctx: RequestContext, image_id: str) -> None:
        self._toggle(ctx, image_id, "active", "deactivated")

    def reactivate(self, ctx: RequestContext, image_id: str) -> None:
        self._toggle(ctx, image_id, "deactivated", "active")

    def _toggle(self, ctx: RequestContext, image_id: str, source: str, target: str) -> None:
        image = self._modifiable(ctx, image_id, "deactivate" if target == "deactivated" else "reactivate")
        if image.status == target:
            return
        if image.status != source:
            verb = "deactivate" if target == "deactivated" else "reactivate"
            raise Forbidden(f"Not allowed to {verb} image in status '{image.status}'")
        self.repo.transition(image_id, source, target)

    # --- data --------------------------------------------------------------------------------------
    def upload(
        self,
        ctx: RequestContext,
        image_id: str,
        chunks: Iterable[bytes],
        expected_size: int | None = None,
        store_name: str | None = None,
    ) -> Image:
        image = self._modifiable(ctx, image_id, "upload_image")
        if image.status != "queued":
            raise Conflict(f"Image status transition from {image.status} to saving is not allowed")
        if not image.disk_format or not image.container_format:
            raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
        store = self.stores.writable(store_name)
        max_size = self.limits.image_size_cap
        if expected_size is not None and expected_size > max_size:
            raise TooLarge(f"Image size {expected_size} exceeds the allowed {max_size} bytes.")
        max_uploading = self.quotas.effective(image.owner).image_count_uploading if image.owner else None
        claim = self.repo.begin_upload(image_id, image.owner, self.node, max_uploading)
        try:
            beating = Heartbeat(chunks, self.upload_beat(image_id, claim), self.limits.heartbeat_every)
            metered = self.quotas.metered(image_id, image.owner, beating, expected_size)
            guard = FormatGuard(metered, image.disk_format, self.format_rules)
            stored = store.add(
                image_id,
                guard,
                max_size=max_size,
                expected_size=expected_size,
                hash_algo=self.limits.hashing_algorithm,
            )
        except BaseException:
            self._back_to_queued(image_id, claim)
            raise
        self._publish(image_id, store.name, stored, guard.verdict.virtual_size if guard.verdict else None, claim)
        return self.repo.get(image_id)

    def upload_beat(self, image_id: str, claim: str) -> Callable[[], None]:
        """The heartbeat of an upload or staging: it stops the upload once its claim is gone (the image
        was deleted, or swept back to queued and taken by another upload)."""

        def beat() -> None:
            if not self.repo.upload_heartbeat(image_id, claim):
                raise Gone(f"Image {image_id} was deleted or reset during the upload; the upload stopped.")

        return beat

    def _back_to_queued(self, image_id: str, claim: str | None = None) -> None:
        """A failed upload: queued again, its reservation released, only while the upload still holds it."""
        try:
            self.repo.transition(image_id, "saving", "queued", if_claim=claim, upload_node=None)
        except Conflict:
            return  # deleted (reservation gone with it) or taken by another upload (its reservation now)
        self.quotas.release(image_id)

    def _publish(
        self, image_id: str, store_name: str, stored: StoredData, virtual_size: int | None, claim: str
    ) -> None:
        """Activate under the upload's claim. An upload that lost its claim to another upload removes no
        data: PUT data is written under the image's own name, which may now hold the winner's bytes; only
        when the image is gone (nobody can win any more) is the data removed."""
        location = Location(url=stored.url, metadata={"store": store_name, **stored.metadata})
        try:
            self.repo.activate(
                image_id,
                "saving",
                location,
                if_claim=claim,
                size=stored.size,
                checksum=stored.checksum,
                os_hash_algo=stored.hash_algo,
                os_hash_value=stored.hash_value,
                virtual_size=virtual_size,
            )
        except Conflict:
            try:
                self.repo.get(image_id)
            except NotFound:
                self._purge(location)  # the image was deleted while its data was arriving
                raise Gone(f"Image {image_id} was deleted during the upload; its data was removed.") from None
            raise Conflict(f"Image {image_id} was reset during the upload (it stalled too long).") from None

    def download(
        self, ctx: RequestContext, image_id: str, byte_range: tuple[int | None, int | None] | None
    ) -> Download:
        """byte_range is (start, end inclusive) or (None, suffix length) for `bytes=-n`."""
        image = self.access.load(ctx, image_id, "download_image")
        if image.status == "deactivated" and not ctx.is_admin:
            raise Forbidden("The requested image has been deactivated. Image data download is forbidden.")
        if not image.has_data or image.size is None:
            return Download(image, iter(()), 0, 0)
        start, length = resolve_range(byte_range, image.size)
        last_error: Exception | None = None
        for attempt in range(2):
            # Heaviest store first; a location that fails gives way to the next one.
            for location in self.stores.by_weight(image.locations):
                try:
                    store = self.stores.for_location(location.url, location.metadata)
                    return Download(image, store.get(location.url, start, length), start, length)
                except (NotFound, StoreError) as exc:
                    last_error = exc
                    log.warning("Image %s: location %s unreadable: %s", image_id, redact_url(location.url), exc)
            if attempt == 0:  # the data may have moved (store migrate) since the image was read
                fresh = self.repo.get(image_id)
                if [loc.url for loc in fresh.locations] == [loc.url for loc in image.locations]:
                    break
                image = fresh
        raise NotFound(f"Image {image_id} has no readable data.") from last_error

    def sweep_abandoned(self, older_than: timedelta, extra_stores: Sequence[Store] = ()) -> int:
        """Uploads whose process died (on any node) go back to queued, their partial data removed
        (from the image stores and from `extra_stores`, such as the staging folder)."""
        swept = 0
        for image_id, status, node in self.repo.abandoned_uploads(older_than):
            try:
                self.repo.transition(
                    image_id, status, "queued", upload_node=None, upload_heartbeat_at=None, upload_claim=None
                )
            except Conflict:
                continue  # its writer woke up, or another process swept it first
            self.quotas.release(image_id)
            for store in [*self.stores.stores.values(), *extra_stores]:
                if not store.read_only:
                    store.discard_partial(image_id, node)
            swept += 1
        return swept

    # --- stores --------------------------------------------------------------------------------------
    def locations(self, ctx: RequestContext, image_id: str) -> list[Location]:
        """GET /v2/images/{id}/locations: for other services (fetch_image_location), never end users."""
        return list(self.access.load(ctx, image_id, "fetch_image_location").locations)

    def add_location(self, ctx: RequestContext, image_id: str, body: Any) -> None:
        """POST /v2/images/{id}/locations: a queued image gets data already served by a web server.

        Only locations a read-only (http) store reads are accepted, as Glance allows end users; the data
        is read once to learn its size and hashes (checked against validation_data when given)."""
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise BadRequest('The request body must be {"url": ..., "validation_data": {...}}.')
        url, validation = check_url(body["url"], "Location url"), body.get("validation_data") or {}
        if not isinstance(validation, dict):
            raise BadRequest("validation_data must be an object with os_hash_algo and os_hash_value.")
        if "os_hash_value" in validation and "os_hash_algo" not in validation:  # Glance's schema: dependentRequired
            raise BadRequest("validation_data's os_hash_value needs os_hash_algo.")
        algo = validation.get("os_hash_algo") or self.limits.hashing_algorithm
        if algo not in ("md5", "sha1", "sha256", "sha512"):
            raise BadRequest(f"os_hash_algo {algo} is not one of md5, sha1, sha256, sha512.")
        check_hash_value(validation.get("os_hash_value"), algo)
        image = self._modifiable(ctx, image_id, "add_image_location")
        if image.status != "queued":
            raise Conflict(f"A location can only be added to a queued image; image {image_id} is {image.status}.")
        store_id = self.stores.store_id(url, {})
        if store_id is None or not self.stores.stores[store_id].read_only:
            raise BadRequest(f"Location {url} is not served by an http store of this service.")
        store = self.stores.stores[store_id]
        cap = self.limits.image_size_cap
        try:  # the store reads under the egress policy: pinned, redirects judged, deadline and minimum rate
            size = store.size(url)
            if size > cap:
                raise TooLarge(f"The data at {url} is {size} bytes, more than the limit of {cap} bytes.")
            meter = HashingMeter(cap, algo)
            for chunk in store.get(url):
                meter.update(chunk)
        except NotFound as exc:
            raise BadRequest(f"Location {url} has no data: {exc.message}") from None
        except (StoreError, StoreUnavailable) as exc:
            raise BadRequest(f"Location {url} cannot be read: {exc.message}") from None
        meter.check_expected(size)
        wanted = validation.get("os_hash_value")
        if wanted and wanted != meter.multihash.hexdigest():
            raise BadRequest(f"The data at {url} does not match validation_data's os_hash_value.")
        stored = meter.result(url)
        self.repo.activate(
            image_id,
            "queued",
            Location(url=url, metadata={"store": store_id}),
            size=stored.size,
            checksum=stored.checksum,
            os_hash_algo=stored.hash_algo,
            os_hash_value=stored.hash_value,
        )

    def store_ids(self, image: Image) -> list[str]:
        """The stores holding the image's data (the `stores` property), in location order."""
        ids = (self.stores.store_id(loc.url, loc.metadata) for loc in image.locations)
        return list(dict.fromkeys(i for i in ids if i is not None))

    def delete_from_store(self, ctx: RequestContext, store_id: str, image_id: str) -> None:
        """DELETE /v2/stores/{store_id}/{image_id}: drop one store's copy, never the last one."""
        if not self.stores.multi:
            raise NotFound("Multiple stores are not enabled on this service (enabled_backends).")
        if store_id not in self.stores.stores:
            raise Conflict(f"The selected store {store_id} is not available on this node.")
        image = self.access.load(ctx, image_id, "delete_image_location")
        if image.status != "active":
            raise Conflict("It's not allowed to remove image data from store if image status is not 'active'")
        held = [loc for loc in image.locations if self.stores.store_id(loc.url, loc.metadata) == store_id]
        if not held:
            raise NotFound(f"Image {image_id} is not available in store {store_id}.")
        for location in held:
            self.repo.remove_location(image_id, location.url)
            self._purge(location)

    def recover(self) -> int:
        """After a restart: uploads this node had in progress go back to queued, their partial data removed."""
        recovered = 0
        for image_id in self.repo.ids_in_status_on("saving", self.node):
            self._back_to_queued(image_id)
            for store in self.stores.stores.values():
                if not store.read_only:
                    store.discard_partial(image_id, self.node)
            recovered += 1
        for store in self.stores.stores.values():
            if not store.read_only:
                store.recover(self.node)
        return recovered


def resolve_range(byte_range: tuple[int | None, int | None] | None, size: int) -> tuple[int, int]:
    """(start, length) of the bytes to send; RangeNotSatisfiable when none of them exist."""

    if byte_range is None:
        return 0, size
    start, end = byte_range
    if start is None:  # suffix: the last `end` bytes
        if not end:
            raise RangeNotSatisfiable("Requested range not satisfiable.", size)
        length = min(end, size)
        return size - length, length
    if start >= size:
        raise RangeNotSatisfiable("Requested range not satisfiable.", size)
    last = size - 1 if end is None else min(end, size - 1)
    if last < start:
        raise RangeNotSatisfiable("Requested range not satisfiable.", size)
    return start, last - start + 1
