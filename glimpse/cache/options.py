"""Glance's image cache options ([DEFAULT]), with Glance's names, defaults and meaning, and the CacheSettings
they give (None when image_cache_dir is unset)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from oslo_config import cfg

GIB = 1024**3

CACHE_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "image_cache_dir",
        help="Folder of this node's image cache; setting it turns the cache on (the /v2/cache API, API versions "
        "2.14-2.18, the prefetcher). Downloads are served from and copied into the cache when [paste_deploy] flavor "
        "also names Glance's cache pipeline (keystone+caching or keystone+cachemanagement, or caching / "
        "cachemanagement without authentication). Each node needs its own folder.",
    ),
    cfg.StrOpt(
        "image_cache_driver",
        default="centralized_db",
        choices=("centralized_db", "sqlite", "xattr"),
        ignore_case=True,
        help="Glance's cache driver names, all accepted: Glimpse has one node-local driver (files, flock and a SQLite "
        "file in image_cache_dir) that is safe with several processes per node. With centralized_db (the default) "
        "each node also records its copies in the database under its worker_self_reference_url, and "
        "GET /v2/cache/nodes/{id} lists the nodes holding an image; with the others that call answers 409.",
    ),
    cfg.StrOpt(
        "worker_self_reference_url",
        help="This node's own URL. With image_cache_driver centralized_db it names the node in the database's "
        "records of cached images (GET /v2/cache/nodes/{id} lists these URLs), so each node needs its own; "
        "unset, the node records nothing (Glance refuses to start). Glance also proxies imports between workers with "
        "it; Glimpse reads it for these records only.",
    ),
    cfg.IntOpt(
        "image_cache_max_size",
        default=10 * GIB,
        min=0,
        help="Bytes the cache may hold: past it, the least recently used copies are pruned (after each new copy, "
        "every cache_prefetcher_interval, by POST /v2/cache/prune and by `glimpse cache prune`).",
    ),
    cfg.IntOpt(
        "image_cache_stall_time",
        default=86400,
        min=0,
        help="Seconds a partly written copy may stay in incomplete/ before the cleaner removes it.",
    ),
    cfg.StrOpt(
        "image_cache_sqlite_db",
        default="cache.db",
        help="The cache's SQLite file (its records, hits and counters), relative to image_cache_dir.",
    ),
    cfg.IntOpt(
        "cache_prefetcher_interval",
        default=300,
        min=1,
        help="Seconds between the periodic runs, in each API process, that cache the queued images (those not cached "
        "at once when queued), remove copies of deactivated or deleted images, clean and prune (Glance's Yoga option; "
        "later Glance caches queued images at once only).",
    ),
]


@dataclass(frozen=True)
class CacheSettings:
    directory: Path
    driver: str = "centralized_db"  # Glance's name; centralized_db also records the node's copies in the database
    node_url: str | None = None  # worker_self_reference_url: the node's name in those records
    sqlite_db: str = "cache.db"
    max_size: int = 10 * 1024**3
    stall_time: int = 86400
    prefetcher_interval: int = 300
    serve_downloads: bool = False  # [paste_deploy] flavor names Glance's cache pipeline


def cache_settings(conf: cfg.ConfigOpts, cache_flavors: tuple[str, ...]) -> CacheSettings | None:
    """cache_flavors: the cache parts of [paste_deploy] flavor (the cache then serves downloads)."""
    if not conf.image_cache_dir:
        return None
    return CacheSettings(
        directory=Path(conf.image_cache_dir),
        driver=conf.image_cache_driver.lower(),
        node_url=conf.worker_self_reference_url or None,
        sqlite_db=conf.image_cache_sqlite_db,
        max_size=conf.image_cache_max_size,
        stall_time=conf.image_cache_stall_time,
        prefetcher_interval=conf.cache_prefetcher_interval,
        serve_downloads=bool(cache_flavors),
    )
