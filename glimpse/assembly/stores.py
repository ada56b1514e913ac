"""Where image bytes live: the configured stores, this node's staging area and image cache."""

from __future__ import annotations

import logging
import socket
import sqlite3
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from glimpse.assembly.egress import store_egress_policy
from glimpse.cache.node_cache import NodeCache
from glimpse.cache.options import CacheSettings
from glimpse.config import Settings
from glimpse.db.cache_nodes import CacheNodeRecords
from glimpse.db.session import SessionFactory
from glimpse.domain.ports import Store
from glimpse.errors import ConfigError
from glimpse.metrics.instruments import Metrics
from glimpse.metrics.stores import MeteredStore
from glimpse.store.factory import build_registry
from glimpse.store.filesystem import FilesystemStore
from glimpse.store.options import BackendConfig
from glimpse.store.partials import node_tag
from glimpse.store.probe import probe
from glimpse.store.registry import StoreRegistry

log = logging.getLogger("glimpse.app")

STAGING_STORE = "os_glance_staging_store"


def node_name(settings: Settings) -> str:
    return f"{socket.gethostname()}:{settings.bind_port}"


def build_stores(settings: Settings, node: str) -> StoreRegistry:
    egress = store_egress_policy(settings)
    if settings.backends:
        return build_registry(
            settings.backends, settings.default_backend, multi=settings.multi_store, node=node, egress=egress
        )
    datadir: dict[str, object] = {"filesystem_store_datadir": settings.filesystem_store_datadir}
    legacy = tuple(BackendConfig(kind, kind, f"{kind} store", options=datadir) for kind in settings.stores)
    return build_registry(legacy, settings.default_store, multi=False, node=node, egress=egress)


def store_probes(stores: StoreRegistry) -> Mapping[str, Callable[[], str]]:
    """The detailed health check's look at each store."""
    return {name: partial(probe, store) for name, store in stores.stores.items()}


def metered(stores: StoreRegistry, metrics: Metrics) -> StoreRegistry:
    """The same stores, each operation measured."""
    wrapped: dict[str, Store] = {name: MeteredStore(store, metrics) for name, store in stores.stores.items()}
    return StoreRegistry(wrapped, stores.default, multi=stores.multi, info=stores.info)


def staging_area(settings: Settings, node: str) -> FilesystemStore:
    """Where glance-direct data waits for its import."""
    return FilesystemStore(STAGING_STORE, settings.staging_dir, node)


def import_scratch(settings: Settings, node: str) -> Path:
    """This node's own work folder under the staging area (conversions, decompressions)."""
    return settings.staging_dir / f"work-{node_tag(node)}"


def build_cache_nodes(settings: CacheSettings | None, sessions: SessionFactory) -> CacheNodeRecords | None:
    """The database's records of which node caches what: Glance's centralized_db driver only."""
    if settings is None or settings.driver != "centralized_db":
        return None
    if settings.node_url is None:
        log.warning(
            "image_cache_driver is centralized_db but worker_self_reference_url is not set: this node's cached "
            "copies are not recorded in the database (GET /v2/cache/nodes/{id} will not list it)."
        )
    return CacheNodeRecords(sessions, settings.node_url)


def build_cache(settings: CacheSettings | None, central: CacheNodeRecords | None = None) -> NodeCache | None:
    """This node's image cache (image_cache_dir), or None when it is off."""
    if settings is None:
        return None
    try:
        return NodeCache(settings.directory, settings.sqlite_db, settings.max_size, settings.stall_time, central)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"image_cache_dir {settings.directory} is not usable: {exc}") from None
