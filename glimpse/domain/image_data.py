"""An image's data: upload (heartbeat, quota meter, format guard, store.add, publish as a compare-and-swap),
download with ranges and fallback between locations, and the recovery of uploads whose writer died."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from glimpse.auth.context import RequestContext
from glimpse.domain.access import ImageAccess
from glimpse.domain.dedup import Dedup, received
from glimpse.domain.digests import Digest, DigestCheck, digest_check
from glimpse.domain.entities import Image, Location, StoredData
from glimpse.domain.image_cache import expectation, teed
from glimpse.domain.image_locations import purge
from glimpse.domain.limits import Limits
from glimpse.domain.notifications import Events, import_lists
from glimpse.domain.ports import ImageCache, ImageRepository, Store, StoreRegistry
from glimpse.domain.quotas import QuotaService
from glimpse.domain.signatures import Signatures, guarded
from glimpse.errors import BadRequest, Conflict, Forbidden, Gone, NotFound, RangeNotSatisfiable, StoreError, TooLarge
from glimpse.formats.inspection import FormatGuard, FormatRules
from glimpse.logsafe import redact_url
from glimpse.store.base import Heartbeat

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class Download:
    image: Image
    chunks: Iterator[bytes]
    start: int
    length: int


class ImageData:
    def __init__(
        self,
        repo: ImageRepository,
        stores: StoreRegistry,
        limits: Limits,
        node: str,
        access: ImageAccess,
        quotas: QuotaService,
        format_rules: FormatRules,
        signatures: Signatures | None = None,
        cache: ImageCache | None = None,
        serve_from_cache: bool = False,
        events: Events | None = None,
        dedup: Dedup | None = None,
    ) -> None:
        """cache: this node's image cache; serve_from_cache: downloads read and fill it (Glance's cache
        pipeline), else only the prefetcher fills it. dedup: deduplicated storage (off without it)."""
        self.dedup = dedup or Dedup(None, stores, False, limits.hashing_algorithm)
        self.cache = cache
        self.serve_from_cache = serve_from_cache and cache is not None
        self.events = events or Events()
        self.repo = repo
        self.stores = stores
        self.limits = limits
        self.node = node
        self.access = access
        self.quotas = quotas
        self.format_rules = format_rules
        self.signatures = signatures or Signatures(None)

    def upload(
        self,
        ctx: RequestContext,
        image_id: str,
        chunks: Iterable[bytes],
        expected_size: int | None = None,
        store_name: str | None = None,
        declared: Sequence[Digest] = (),
    ) -> Image:
        """declared: the client's Content-Digest/Repr-Digest (RFC 9530); data that does not match is not kept."""
        image = self.access.load(ctx, image_id, "upload_image")
        if image.status != "queued":
            raise Conflict(f"Image status transition from {image.status} to saving is not allowed")
        if not image.disk_format or not image.container_format:
            raise BadRequest("Properties disk_format, container_format must be set prior to saving data.")
        store = self.stores.writable(store_name)
        max_size = self.limits.image_size_cap
        if expected_size is not None and expected_size > max_size:
            raise TooLarge(f"Image size {expected_size} exceeds the allowed {max_size} bytes.")
        # A signed image's certificate is fetched before any byte is taken: an unknown one refuses the upload at once.
        verifier = self.signatures.verifier(image, ctx.auth_token, ctx.project_id)
        check = digest_check(declared, self.limits.hashing_algorithm)
        claim = self.begin(ctx, image, store.name)
        pinned: str | None = None
        try:
            # The client declared data this store holds already: it is received and checked, not written.
            pinned = self.dedup.pin(image, claim, store, expected_size, declared)
            beating = Heartbeat(check.checked(chunks), self.upload_beat(image_id, claim), self.limits.heartbeat_every)
            metered = self.quotas.metered(image_id, image.owner, beating, expected_size)
            guard = FormatGuard(guarded(metered, verifier), image.disk_format, self.format_rules)
            write = store.add if pinned is None else _receiver(pinned)
            stored = write(
                image_id,
                guard,
                max_size=max_size,
                expected_size=expected_size,
                hash_algo=self.limits.hashing_algorithm,
            )
            verified(check, stored, store if pinned is None else None)
        except BaseException as exc:
            self._failed(image_id, exc)
            if pinned is not None:
                self.dedup.release(image_id, claim)
            self._back_to_queued(image_id, claim)
            raise
        virtual_size = guard.verdict.virtual_size if guard.verdict else None
        return self.publish(image_id, store, stored, virtual_size, claim, pinned is not None)

    def begin(self, ctx: RequestContext, image: Image, store_name: str) -> str:
        """An upload of the image starts (queued -> saving) under a new claim, as PUT's does: the count of
        uploads in progress checked, image.update and image.prepare sent."""
        max_uploading = self.quotas.effective(image.owner).image_count_uploading if image.owner else None
        claim = self.repo.begin_upload(image.id, image.owner, self.node, max_uploading)
        self._announce(dataclasses.replace(image, status="saving"), store_name)
        return claim

    def verifier_guard(self, ctx: RequestContext, image: Image) -> Callable[[Iterable[bytes]], Iterable[bytes]]:
        """What checks a signed image's data against its signature (nothing for an unsigned one)."""
        verifier = self.signatures.verifier(image, ctx.auth_token, ctx.project_id)
        return lambda chunks: guarded(chunks, verifier)

    def publish(
        self,
        image_id: str,
        store: Store,
        stored: StoredData,
        virtual_size: int | None,
        claim: str,
        pinned: bool = False,
    ) -> Image:
        """The data is in: the image becomes active under the upload's claim, with the notifications of an upload
        (pinned: the data is a twin the store held already, received and checked, not written)."""
        try:
            self._publish(image_id, store, stored, virtual_size, claim, pinned)
        except BaseException as exc:
            self._failed(image_id, exc)
            raise
        published = self.repo.get(image_id)
        self.events.image("image.upload", published, **import_lists(published))
        self.events.image("image.activate", published)
        self.events.image("image.update", published)
        return published

    def give_back(self, image_id: str, claim: str, exc: BaseException | None = None) -> None:
        """An upload under `claim` ended without data: the image is queued again, its reservation released
        (exc: the failure, told as image.upload's error notification)."""
        if exc is not None:
            self._failed(image_id, exc)
        self._back_to_queued(image_id, claim)

    def _announce(self, image: Image, store_name: str) -> None:
        """Glance's image.update (now saving) and image.prepare as an upload begins."""
        self.events.image("image.update", image)
        backend = {"backend": store_name} if self.stores.multi else {}
        self.events.image("image.prepare", image, **import_lists(image), **backend)

    def _failed(self, image_id: str, exc: BaseException) -> None:
        self.events.upload_failed(image_id, getattr(exc, "message", None) or str(exc) or type(exc).__name__)

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
        if self.events.wants("image.update"):
            with contextlib.suppress(NotFound):  # deleted meanwhile: image.delete tells
                self.events.image("image.update", self.repo.get(image_id))

    def _publish(
        self, image_id: str, store: Store, stored: StoredData, virtual_size: int | None, claim: str, pinned: bool
    ) -> None:
        """Activate under the upload's claim. An upload that lost its claim to another upload removes no
        data: PUT data is written under the image's own name, which may now hold the winner's bytes; only
        when the image is gone (nobody can win any more) is the data removed. With deduplication the image
        is linked to a twin its store holds already, and the copy just written goes."""
        location = Location(url=stored.url, metadata={"store": store.name, **stored.metadata})
        try:
            redundant = self.repo.activate(
                image_id,
                "saving",
                location,
                if_claim=claim,
                shared=self.dedup.applies(store),
                size=stored.size,
                checksum=stored.checksum,
                os_hash_algo=stored.hash_algo,
                os_hash_value=stored.hash_value,
                virtual_size=virtual_size,
            )
        except Conflict:
            if pinned:
                self.dedup.release(image_id, claim)  # never the shared data itself: this upload's reference to it
            try:
                self.repo.get(image_id)
            except NotFound:
                if not pinned:
                    purge(self.stores, location)  # the image was deleted while its data was arriving
                raise Gone(f"Image {image_id} was deleted during the upload; its data was removed.") from None
            raise Conflict(f"Image {image_id} was reset during the upload (it stalled too long).") from None
        self.dedup.discard(redundant)

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
        download = self._read(image, start, length, whole=byte_range is None)
        chunks = self.events.sending(download.chunks, download.image, ctx, length)
        return Download(download.image, chunks, start, length)

    def _read(self, image: Image, start: int, length: int, whole: bool) -> Download:
        """From this node's cache when it holds a verified copy, else from the stores (whole images fill the cache)."""
        if not self.serve_from_cache or image.status != "active":  # a deactivated image never comes from the cache
            return self._from_stores(image, start, length)
        cached = self._cached(image, start, length)
        if cached is not None:
            return cached
        download = self._from_stores(image, start, length)
        if whole:  # only whole images are cached (a range is served, not kept)
            writer = self._guarded(lambda cache: cache.writer(image.id, expectation(download.image)))
            if writer is not None:
                return Download(download.image, teed(download.chunks, writer), start, length)
        return download

    def _guarded(self, use: Callable[[ImageCache], _T]) -> _T | None:
        """A cache that fails (disk, its SQLite file) is bypassed with a warning: downloads go on from the store."""
        assert self.cache is not None
        try:
            return use(self.cache)
        except Exception as exc:
            log.warning("The image cache is bypassed: %s", exc)
            return None

    def _cached(self, image: Image, start: int, length: int) -> Download | None:
        chunks = self._guarded(lambda cache: cache.read(image.id, expectation(image), start, length))
        if chunks is not None:
            return Download(image, chunks, start, length)
        self._guarded(lambda cache: cache.count_miss())
        return None

    def _from_stores(self, image: Image, start: int, length: int) -> Download:
        last_error: Exception | None = None
        for attempt in range(2):
            # Heaviest store first; a location that fails gives way to the next one.
            for location in self.stores.by_weight(image.locations):
                try:
                    store = self.stores.for_location(location.url, location.metadata)
                    return Download(image, store.get(location.url, start, length), start, length)
                except (NotFound, StoreError) as exc:
                    last_error = exc
                    log.warning("Image %s: location %s unreadable: %s", image.id, redact_url(location.url), exc)
            if attempt == 0:  # the data may have moved (store migrate) since the image was read
                fresh = self.repo.get(image.id)
                if [loc.url for loc in fresh.locations] == [loc.url for loc in image.locations]:
                    break
                image = fresh
        raise NotFound(f"Image {image.id} has no readable data.") from last_error

    def cache_image(self, image_id: str) -> bool:
        """The prefetcher: read an active image from its store into the cache. False when it is not cacheable
        now (gone, not active, no data, or another process of the node is writing it)."""
        if self.cache is None:
            return False
        image = self.repo.get(image_id)
        if image.status != "active" or not image.has_data or image.size is None:
            return False
        if self.cache.is_cached(image_id):
            self.cache.delete_queued(image_id)
            return True
        writer = self.cache.writer(image_id, expectation(image))
        if writer is None:
            return False
        try:
            download = self._from_stores(image, 0, image.size)
            for chunk in download.chunks:
                writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        return writer.finish()

    def forget_cached(self, image_id: str) -> None:
        """This node's copy and queue entry of an image deleted or deactivated here (other nodes' sweeps drop theirs,
        and no node serves a copy of an image that is not active)."""
        if self.cache is not None:
            self._guarded(lambda cache: (cache.delete_cached(image_id), cache.delete_queued(image_id)))

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
            self.dedup.release(image_id)
            for store in [*self.stores.stores.values(), *extra_stores]:
                if not store.read_only:
                    store.discard_partial(image_id, node)
            swept += 1
        return swept

    def recover(self) -> int:
        """After a restart: uploads this node had in progress go back to queued, their partial data removed."""
        recovered = 0
        for image_id in self.repo.ids_in_status_on("saving", self.node):
            self._back_to_queued(image_id)
            self.dedup.release(image_id)
            for store in self.stores.stores.values():
                if not store.read_only:
                    store.discard_partial(image_id, self.node)
            recovered += 1
        for store in self.stores.stores.values():
            if not store.read_only:
                store.recover(self.node)
        return recovered


def verified(check: DigestCheck, stored: StoredData, store: Store | None) -> None:
    """The data just written (or received, store None) matches what the client declared, else the data written
    is removed (DigestMismatch)."""
    try:
        check.verify_stored(stored.hash_algo, stored.hash_value)
    except BaseException:
        if store is not None:
            store.delete(stored.url)  # this upload's own data, not yet published: nothing else refers to it
        raise


def _receiver(url: str) -> Callable[..., StoredData]:
    """store.add's stand-in for an upload of data held already at url."""

    def receive(
        image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        return received(chunks, url, max_size=max_size, expected_size=expected_size, hash_algo=hash_algo)

    return receive


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
