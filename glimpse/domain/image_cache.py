"""The image cache's use cases: Glance's cache API (2.14-2.18) with its policies, the prefetcher, and the sweep
that keeps copies of deactivated or deleted images out of every node's cache.

The cache itself (files, locks, records) is a port (`ports.ImageCache`); downloads read and fill it in
image_data.py. Every rule of the API is checked first, then whether this node has a cache at all, as Glance does:
an administrator of a node without image_cache_dir gets 404, anyone else 403.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from glimpse.auth.context import RequestContext
from glimpse.domain.access import ImageAccess
from glimpse.domain.authorization import Authorizer, image_target
from glimpse.domain.entities import CachedImage, CacheExpectation, Image
from glimpse.domain.ports import CacheNodeRecords, CacheWriter, ImageCache, ImageRepository
from glimpse.errors import BadRequest, Conflict, NotFound

log = logging.getLogger(__name__)

CLEAR_TARGETS = ("", "cache", "queue")


def expectation(image: Image) -> CacheExpectation:
    return CacheExpectation(
        size=image.size or 0,
        checksum=image.checksum,
        hash_algo=image.os_hash_algo,
        hash_value=image.os_hash_value,
    )


def teed(chunks: Iterator[bytes], writer: CacheWriter) -> Iterator[bytes]:
    """The chunks as they come, copied into the cache on the way; a cache that fails stops caching, never the
    download. A download cut short (client gone, store error) leaves no copy."""
    live: CacheWriter | None = writer
    try:
        for chunk in chunks:
            if live is not None:
                try:
                    live.write(chunk)
                except Exception as exc:
                    log.warning("Caching stopped: %s", exc)
                    live.abort()
                    live = None
            yield chunk
        if live is not None:
            current, live = live, None
            try:
                current.finish()
            except Exception as exc:
                log.warning("Publishing a cached copy failed: %s", exc)
    finally:
        if live is not None:
            live.abort()


@dataclass(frozen=True)
class CacheState:
    cached: list[CachedImage]
    queued: list[str]


class CacheService:
    def __init__(
        self,
        cache: ImageCache | None,
        repo: ImageRepository,
        policy: Authorizer,
        fill: Callable[[str], bool],
        nodes: CacheNodeRecords | None = None,
    ) -> None:
        """fill(image_id): read an active image from its store into the cache (ImageData.cache_image); nodes: the
        database's records of every node's copies (image_cache_driver centralized_db), else None."""
        self.cache = cache
        self.repo = repo
        self.policy = policy
        self.access = ImageAccess(repo, policy)
        self.fill = fill
        self.node_records = nodes
        self.on_queue: Callable[[], None] = lambda: None  # the prefetcher's wake-up, set when it starts

    def _enforce(self, ctx: RequestContext, rule: str, image: Image | None = None) -> ImageCache:
        self.policy.enforce(ctx, rule, image_target(image) if image is not None else {})
        if self.cache is None:
            raise NotFound("Caching via API is not supported at this site.")
        return self.cache

    def _image(self, ctx: RequestContext, image_id: str) -> Image | None:
        try:
            return self.access.load(ctx, image_id)
        except NotFound:
            return None

    # --- the API ------------------------------------------------------------------------------------------
    def state(self, ctx: RequestContext) -> CacheState:
        cache = self._enforce(ctx, "cache_list")
        return CacheState(cache.cached_images(), cache.queued_images())

    def queue(self, ctx: RequestContext, image_id: str) -> None:
        image = self._image(ctx, image_id)
        if image is None:
            raise NotFound(f"Image {image_id} not found.")
        cache = self._enforce(ctx, "cache_image", image)
        if image.status != "active":
            raise BadRequest("Only images with status active can be targeted for queueing")
        cache.queue(image_id)
        self.on_queue()

    def delete(self, ctx: RequestContext, image_id: str) -> None:
        image = self._image(ctx, image_id)
        if image is None and (self.cache is None or not self._known(self.cache, image_id)):
            raise NotFound(f"Image {image_id} not found.")
        cache = self._enforce(ctx, "cache_delete", image)
        cache.delete_cached(image_id)
        cache.delete_queued(image_id)

    @staticmethod
    def _known(cache: ImageCache, image_id: str) -> bool:
        return cache.is_cached(image_id) or image_id in cache.queued_images()

    def clear(self, ctx: RequestContext, target: str) -> dict[str, int]:
        """target: Glance's x-image-cache-clear-target ('' for both)."""
        cache = self._enforce(ctx, "cache_delete")
        target = target.strip().lower()
        if target not in CLEAR_TARGETS:
            raise BadRequest("If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string.")
        cleared: dict[str, int] = {}
        if target in ("", "cache"):
            cleared["cache_deleted"] = cache.delete_all_cached()
        if target in ("", "queue"):
            cleared["queue_deleted"] = cache.delete_all_queued()
        return cleared

    def clean(self, ctx: RequestContext) -> None:
        self._enforce(ctx, "cache_clean").clean()

    def prune(self, ctx: RequestContext) -> tuple[int, int]:
        return self._enforce(ctx, "cache_prune").prune()

    def nodes(self, ctx: RequestContext, image_id: str) -> list[str]:
        """The worker_self_reference_url of every node caching the image, checked in Glance's order: policy, a
        cache on this node, the centralized_db driver (else 409), an image the caller can see."""
        self._enforce(ctx, "list_cached_nodes")
        if self.node_records is None:
            raise Conflict("Centralized caching is not enabled")
        if self._image(ctx, image_id) is None:
            raise NotFound(f"Image {image_id} not found.")
        return self.node_records.nodes(image_id)

    def counters(self) -> dict[str, int]:
        """This node's hits and misses (every process of the node counts into the same file)."""
        return self.cache.counters() if self.cache is not None else {"hits": 0, "misses": 0}

    # --- the prefetcher and the sweep ---------------------------------------------------------------------
    def prefetch_queued(self) -> int:
        """Cache every queued image; an image that is gone or not active leaves the queue. Returns how many were
        cached. Safe in several processes at once: one writer per image (the others skip it)."""
        if self.cache is None:
            return 0
        cached = 0
        for image_id in self.cache.queued_images():
            try:
                image = self.repo.get(image_id)
            except NotFound:
                image = None
            if image is None or image.status != "active" or not image.has_data:
                log.warning("Image %s is not an active image with data: not cached, left the queue", image_id)
                self.cache.delete_queued(image_id)
                continue
            try:
                if self.fill(image_id):
                    cached += 1
            except Exception:
                log.exception("Caching image %s failed; it stays queued", image_id)
        return cached

    def sweep(self) -> None:
        """The periodic run: drop copies of images no longer active (deactivated, deleted, by any node), cache
        what is queued, clean, prune."""
        if self.cache is None:
            return
        for entry in self.cache.cached_images():
            try:
                status = self.repo.get(entry.image_id).status
            except NotFound:
                status = "deleted"
            if status != "active":
                log.info("Image %s is %s: its cached copy is removed", entry.image_id, status)
                self.cache.delete_cached(entry.image_id)
        self.prefetch_queued()
        self.cache.clean()
        self.cache.prune()
