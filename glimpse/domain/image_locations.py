"""An image's locations: listing them for other services, adding one served by an http store, and
dropping one store's copy (DELETE /v2/stores/{store_id}/{image_id})."""

from __future__ import annotations

import logging
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain import audit
from glimpse.domain.access import ImageAccess
from glimpse.domain.audit_entries import LOCATION
from glimpse.domain.entities import Image, Location
from glimpse.domain.inputs import check_hash_value, check_url
from glimpse.domain.limits import Limits
from glimpse.domain.ports import ImageRepository, StoreRegistry
from glimpse.errors import BadRequest, Conflict, NotFound, StoreError, StoreUnavailable, TooLarge
from glimpse.logsafe import redact_url
from glimpse.store.base import HashingMeter

log = logging.getLogger(__name__)


def store_ids(stores: StoreRegistry, image: Image) -> list[str]:
    """The stores holding the image's data (the `stores` property), in location order."""
    ids = (stores.store_id(loc.url, loc.metadata) for loc in image.locations)
    return list(dict.fromkeys(i for i in ids if i is not None))


def purge(stores: StoreRegistry, location: Location, left_to: str = "`glimpse store gc`") -> bool:
    """Remove data nobody references any more, after the database no longer does; True once it is gone. A store
    that fails or cannot be reached leaves the data where it is (logged, naming `left_to`, what removes it later):
    what the caller asked for is done, as in Glance, whose delete succeeds too."""
    try:
        stores.for_location(location.url, location.metadata).delete(location.url)
    except StoreUnavailable as exc:
        log.warning(
            "Could not delete image data at %s (%s); it is left in its store: %s removes it.",
            redact_url(location.url), exc.message, left_to,
        )  # fmt: skip
        return False
    except StoreError:
        log.exception(
            "Could not delete image data at %s; it is left in its store: %s removes it.",
            redact_url(location.url), left_to,
        )  # fmt: skip
        return False
    return True


def purge_recorded(stores: StoreRegistry, repo: ImageRepository, image_id: str, location: Location) -> None:
    """Remove the data of a copy recorded as being deleted, then the record. The caller's deletion is done either way:
    data a store kept, or a record the database did not take, is left to `glimpse scrub` (which deletes the already
    missing data again, harmlessly, and records it then)."""
    if not purge(stores, location, left_to="`glimpse scrub`"):
        return
    try:
        repo.data_removed(image_id, location.url)
    except Exception:
        log.warning("Image %s: could not record that its data at %s is gone", image_id, redact_url(location.url),
                    exc_info=True)  # fmt: skip


class ImageLocations:
    def __init__(
        self,
        repo: ImageRepository,
        stores: StoreRegistry,
        limits: Limits,
        access: ImageAccess,
        delayed_delete: bool = False,
    ) -> None:
        """delayed_delete: a store's copy deleted through the API waits (pending_delete) for the scrubber."""
        self.delayed_delete = delayed_delete
        self.repo = repo
        self.stores = stores
        self.limits = limits
        self.access = access

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
        image = self.access.load(ctx, image_id, "add_image_location")
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
        location = Location(url=url, metadata={"store": store_id})
        with audit.change(
            ctx, "image.location.add", LOCATION, image_id, image.owner,
            location=[None, audit.location_value(location)], status=["queued", "active"], size=[None, stored.size],
        ):  # fmt: skip
            self.repo.activate(
                image_id,
                "queued",
                location,
                size=stored.size,
                checksum=stored.checksum,
                os_hash_algo=stored.hash_algo,
                os_hash_value=stored.hash_value,
            )

    def store_ids(self, image: Image) -> list[str]:
        return store_ids(self.stores, image)

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
            with audit.change(
                ctx, "image.location.delete", LOCATION, image_id, image.owner,
                location=[audit.location_value(location), None],
            ):  # fmt: skip
                unused = self.repo.remove_location(image_id, location.url, delayed=self.delayed_delete)
            if unused:  # nothing refers to the data any more
                purge_recorded(self.stores, self.repo, image_id, location)
