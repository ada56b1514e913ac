"""Composition root: the only place that builds the database engine, the stores and the app."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from glimpse import logs, logsafe
from glimpse.api import versions
from glimpse.api.access_log import AccessLogMiddleware
from glimpse.api.cors import CorsMiddleware, CorsRules
from glimpse.api.errors import domain_error, error_response
from glimpse.api.healthcheck import DeepChecks, Health
from glimpse.api.healthcheck import routes as healthcheck_routes
from glimpse.api.limits import RequestLimits, RequestLimitsMiddleware
from glimpse.api.metrics import MetricsMiddleware
from glimpse.api.middleware import (
    CrossSiteGuard,
    KeystoneAuthMiddleware,
    NoAuthContextMiddleware,
    RequestIdMiddleware,
)
from glimpse.api.v2 import (
    cache,
    discovery,
    image_data,
    images,
    imports,
    members,
    metadef_entries,
    metadefs,
    quotas,
)
from glimpse.auth.policy import Policy
from glimpse.auth.token_cache import InProcessCache, MemcachedCache, Protection, RedisCache, TokenCache
from glimpse.auth.unified_limits import KeystoneLimits
from glimpse.cache.node_cache import NodeCache
from glimpse.config import CacheSettings, Settings, load_settings
from glimpse.dashboard import dashboard_middleware
from glimpse.dashboard.web import BASE as DASHBOARD_BASE
from glimpse.db import embedded, migrate
from glimpse.db.health import ping, task_queue
from glimpse.db.metadef_files import MetadefFiles
from glimpse.db.metadefs import MetadefRepository
from glimpse.db.purge import purge
from glimpse.db.quotas import QuotaRepository
from glimpse.db.repositories import ImageRepository
from glimpse.db.scrub_queue import ScrubQueue
from glimpse.db.session import make_engine, make_sessionmaker
from glimpse.db.snapshots import ImageSnapshots
from glimpse.db.tasks import TaskRepository
from glimpse.domain.access import ImageAccess
from glimpse.domain.glance_import import GlanceImport
from glimpse.domain.image_cache import CacheService
from glimpse.domain.image_data import ImageData
from glimpse.domain.image_locations import ImageLocations
from glimpse.domain.import_claim import ImportTiming
from glimpse.domain.import_runner import ImportRunner
from glimpse.domain.import_sources import ImportOptions, Sources
from glimpse.domain.imports import ImportService
from glimpse.domain.limits import Limits
from glimpse.domain.members import MemberService
from glimpse.domain.metadefs import MetadefService, PageLimits
from glimpse.domain.notifications import Events
from glimpse.domain.ports import Store
from glimpse.domain.property_rules import parse as parse_property_rules
from glimpse.domain.protections import UNPROTECTED, PropertyProtections
from glimpse.domain.quotas import QuotaService
from glimpse.domain.schema import ImageSchema
from glimpse.domain.scrubber import Scrubber, ScrubTiming
from glimpse.domain.service import ImageService
from glimpse.domain.signatures import Signatures
from glimpse.domain.stores import StoreMaintenance
from glimpse.errors import BadRequest, ConfigError, GlimpseError
from glimpse.extras import missing_message, require
from glimpse.formats.conversion import ProcessLimits
from glimpse.formats.inspection import FormatRules
from glimpse.log_options import read_log_settings
from glimpse.messaging.queue import QueuedNotifier
from glimpse.metrics.database import instrument_pool
from glimpse.metrics.instruments import CacheCollector, Metrics, TaskQueueCollector, version
from glimpse.metrics.stores import MeteredStore
from glimpse.optvalues import as_float, as_int, as_list
from glimpse.sources.egress import EgressPolicy
from glimpse.sources.egress import Limits as EgressLimits
from glimpse.sources.glance_db import GlanceDatabase
from glimpse.sources.key_manager import CastellanCertificates
from glimpse.sources.web import download
from glimpse.store.factory import build_registry
from glimpse.store.filesystem import FilesystemStore
from glimpse.store.options import BackendConfig
from glimpse.store.partials import node_tag
from glimpse.store.probe import probe
from glimpse.store.registry import StoreRegistry
from glimpse.streaming import Transfers
from glimpse.worker import CachePrefetcher, TaskWorker

log = logging.getLogger(__name__)

# Import methods this build carries out; the operator's enabled_import_methods can only narrow them.
IMPLEMENTED_IMPORT_METHODS: tuple[str, ...] = ("glance-direct", "web-download", "copy-image", "glance-download")
SETTINGS_ENV = "GLIMPSE_SERVE_ARGS"
# Seconds past graceful_shutdown_timeout for stopped uploads to clean up (uvicorn's deadline is this later).
SHUTDOWN_MARGIN = 10


def node_name(settings: Settings) -> str:
    return f"{socket.gethostname()}:{settings.bind_port}"


def egress_policy(settings: Settings) -> EgressPolicy:
    """The one egress policy: [import_filtering_opts] (Glance's names) and [egress] (Glimpse's own limits)."""
    f, e = settings.import_filter, settings.egress

    def words(opts: dict[str, object], key: str) -> tuple[str, ...]:
        return tuple(str(v).strip().lower() for v in as_list(opts.get(key)) if str(v).strip())

    def ports(key: str) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in words(f, key))
        except ValueError:
            raise ConfigError(f"[import_filtering_opts] {key} must list port numbers.") from None

    defaults = EgressLimits()
    limits = EgressLimits(
        connect_timeout=as_float(e.get("connect_timeout") or defaults.connect_timeout),
        read_timeout=as_float(e.get("read_timeout") or defaults.read_timeout),
        min_rate=as_int(e.get("min_rate", defaults.min_rate)),
        rate_window=as_float(e.get("min_rate_window") or defaults.rate_window),
        total_timeout=as_float(e.get("total_timeout") or defaults.total_timeout),
        max_redirects=as_int(e.get("max_redirects", defaults.max_redirects)),
    )
    policy = EgressPolicy(
        allowed_schemes=words(f, "allowed_schemes"),
        disallowed_schemes=words(f, "disallowed_schemes"),
        allowed_hosts=tuple(h.rstrip(".") for h in words(f, "allowed_hosts")),
        disallowed_hosts=tuple(h.rstrip(".") for h in words(f, "disallowed_hosts")),
        allowed_ports=ports("allowed_ports"),
        disallowed_ports=ports("disallowed_ports"),
        allow_private_addresses=bool(f.get("allow_private_addresses")),
        limits=limits,
    )
    try:
        return policy.refusing(*own_endpoints(settings))
    except BadRequest as exc:
        raise ConfigError(f"public_endpoint or bind_host cannot be read as an address: {exc.message}") from None


def own_endpoints(settings: Settings) -> list[str]:
    """Where this service answers: a fetch must never come back to it (whatever the operator trusts)."""
    own = [settings.public_endpoint] if settings.public_endpoint else []
    if settings.bind_host not in ("0.0.0.0", "::", ""):
        own.append(f"[{settings.bind_host}]:{settings.bind_port}" if ":" in settings.bind_host
                   else f"{settings.bind_host}:{settings.bind_port}")  # fmt: skip
    return own


def store_egress_policy(settings: Settings) -> EgressPolicy:
    """What the http store (and so a location) may read: the same policy, plus the operator's own web servers."""
    hosts = as_list(settings.egress.get("http_store_allowed_hosts"))
    return egress_policy(settings).trusting(*(str(h) for h in hosts if str(h).strip()))


def build_stores(settings: Settings, node: str) -> StoreRegistry:
    egress = store_egress_policy(settings)
    if settings.backends:
        return build_registry(
            settings.backends, settings.default_backend, multi=settings.multi_store, node=node, egress=egress
        )
    datadir: dict[str, object] = {"filesystem_store_datadir": settings.filesystem_store_datadir}
    legacy = tuple(BackendConfig(kind, kind, f"{kind} store", options=datadir) for kind in settings.stores)
    return build_registry(legacy, settings.default_store, multi=False, node=node, egress=egress)


@dataclass(frozen=True)
class Services:
    images: ImageService
    members: MemberService
    quotas: QuotaService
    imports: ImportService
    stores: StoreMaintenance
    runner: ImportRunner
    metadefs: MetadefService
    cache: CacheService
    engine: Engine | None = None
    store_checks: Mapping[str, Callable[[], str]] = field(default_factory=dict)  # the detailed health check's


def sync_database(settings: Settings) -> str | None:
    """`glimpse db sync`: migrate the configured database to the head revision; returns that revision."""
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    return migrate.current_revision(engine)


def database_revision(settings: Settings) -> str | None:
    """`glimpse db version`: the configured database's schema revision (None before any migration)."""
    return migrate.current_revision(make_engine(settings.database_url))


def current_engine(settings: Settings, *, migrate_embedded: bool = True) -> Engine:
    """The engine of the configured database, whose schema must be at head (the embedded one is upgraded)."""
    engine = make_engine(settings.database_url)
    if not migrate.is_current(engine):
        if settings.embedded_database and migrate_embedded:
            migrate.upgrade(engine)
        else:
            raise ConfigError(
                f"The database is at revision {migrate.current_revision(engine) or 'none'}, "
                f"not {migrate.head_revision()}: run 'glimpse db sync' first."
            )
    return engine


def property_protections(settings: Settings, policy: Policy) -> PropertyProtections:
    """The operator's property_protection_file, read and checked once (a wrong one stops the start-up)."""
    path = settings.property_protection_file
    if path is None:
        return UNPROTECTED
    fmt = settings.property_protection_rule_format
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"property_protection_file {path} cannot be read: {exc}") from None
    sections = parse_property_rules(text, fmt, path)
    if fmt == "policies":
        named = {e for s in sections for entries in s.allowed.values() for e in entries} - {"@", "!"}
        for rule in sorted(r for r in named if not policy.defines(r)):
            log.warning("property_protection_file %s names policy rule %s, which no policy defines: it allows "
                        "nobody until the policy file defines it.", path, rule)  # fmt: skip
    log.info("Property protections from %s (%s format): %d sections.", path, fmt, len(sections))
    return PropertyProtections(sections, fmt, policy)


def metered(stores: StoreRegistry, metrics: Metrics) -> StoreRegistry:
    """The same stores, each operation measured."""
    wrapped: dict[str, Store] = {name: MeteredStore(store, metrics) for name, store in stores.stores.items()}
    return StoreRegistry(wrapped, stores.default, multi=stores.multi, info=stores.info)


def build_notifier(settings: Settings) -> QueuedNotifier | None:
    """Glance's notifications through oslo.messaging when [oslo_messaging_notifications] names a driver."""
    if not settings.notifications.enabled:
        return None
    from glimpse.messaging.oslo import import_oslo_messaging, oslo_sender

    try:
        import_oslo_messaging()  # at start-up, not in the first request's event
    except ImportError as exc:
        raise ConfigError(missing_message("oslo_messaging", "[oslo_messaging_notifications] driver")) from exc

    files, publisher = settings.config_files, settings.notifications.publisher_id
    return QueuedNotifier(lambda: oslo_sender(files, publisher), capacity=settings.notifications.queue_size)


def build_events(settings: Settings) -> Events:
    """The events of one process's use cases: to the configured notifier, or nowhere."""
    notifier = build_notifier(settings)
    return Events(notifier, settings.notifications.disabled) if notifier else Events()


def build_services(
    settings: Settings,
    policy: Policy | None = None,
    *,
    migrate_embedded: bool = True,
    metrics: Metrics | None = None,
    events: Events | None = None,
) -> Services:
    """events: where the use cases' notifications go (nowhere by default: the server passes its notifier)."""
    events = events or Events()
    engine = current_engine(settings, migrate_embedded=migrate_embedded)
    if metrics is not None:
        instrument_pool(engine, metrics)
    policy = policy or Policy(settings.policy_file)
    sessions = make_sessionmaker(engine)
    node = node_name(settings)
    limits = Limits(
        image_size_cap=settings.image_size_cap,
        image_property_quota=settings.image_property_quota,
        image_tag_quota=settings.image_tag_quota,
        limit_param_default=settings.limit_param_default,
        api_limit_max=settings.api_limit_max,
        hashing_algorithm=settings.hashing_algorithm,
        heartbeat_every=settings.upload_heartbeat_timeout / 4,
        image_location_quota=settings.image_location_quota,
        image_property_value_max_length=settings.image_property_value_max_length,
    )
    repo = ImageRepository(sessions)
    external = None
    if settings.use_keystone_limits:
        require("oslo_limit", "use_keystone_limits = true")
        external = KeystoneLimits(list(settings.config_files))
    quotas = QuotaService(QuotaRepository(sessions), policy, settings.user_storage_quota, external)
    try:
        schema = ImageSchema(settings.disk_formats, settings.container_formats)
    except ValueError as exc:
        raise ConfigError(f"[image_format] {exc}") from None
    rules = FormatRules(
        require_image_format_match=settings.require_image_format_match,
        vmdk_allowed_types=settings.vmdk_allowed_types,
        gpt_safety_checks_nonfatal=settings.gpt_safety_checks_nonfatal,
    )
    protections = property_protections(settings, policy)
    stores = build_stores(settings, node)
    checks = {name: partial(probe, store) for name, store in stores.stores.items()}
    if metrics is not None:
        stores = metered(stores, metrics)
    staging = FilesystemStore("os_glance_staging_store", settings.staging_dir, node)
    access = ImageAccess(repo, policy)
    signatures = Signatures(CastellanCertificates(settings.key_manager))
    node_cache = build_cache(settings.image_cache)
    serve_from_cache = settings.image_cache is not None and settings.image_cache.serve_downloads
    uploads = ImageData(
        repo, stores, limits, node, access, quotas, rules,
        signatures=signatures, cache=node_cache, serve_from_cache=serve_from_cache, events=events,
    )  # fmt: skip
    locations = ImageLocations(repo, stores, limits, access, settings.delayed_delete)
    images = ImageService(
        repo, stores, limits, policy, quotas, uploads, locations, schema,
        staging=staging, protections=protections, delayed_delete=settings.delayed_delete, events=events,
    )
    members = MemberService(repo, policy, settings.image_member_quota, events)
    sources = Sources(import_options(settings), staging, download, settings.image_size_cap)
    tasks = TaskRepository(sessions)
    imports = ImportService(
        repo, stores, limits, quotas, uploads, tasks, policy, sources, node,
        signatures=signatures, protections=protections, events=events,
    )  # fmt: skip
    timing = ImportTiming(
        heartbeat_every=settings.task_heartbeat_interval,
        stale_after=timedelta(seconds=settings.task_stale_after),
        step_timeout=float(settings.import_step_timeout),
        upload_abandoned_after=timedelta(seconds=settings.upload_heartbeat_timeout),
    )
    scratch = settings.staging_dir / f"work-{node_tag(node)}"
    runner = ImportRunner(
        repo, stores, limits, quotas, uploads, rules, tasks, sources, scratch, node, timing,
        signatures=signatures, events=events, meter=metrics,
    )  # fmt: skip
    maintenance = StoreMaintenance(repo, stores, settings.hashing_algorithm)
    page = PageLimits(settings.limit_param_default, settings.api_limit_max)
    catalog = MetadefService(MetadefRepository(sessions), policy, page)
    cache_service = CacheService(node_cache, repo, policy, uploads.cache_image)
    return Services(images, members, quotas, imports, maintenance, runner, catalog, cache_service, engine, checks)


def build_cache(settings: CacheSettings | None) -> NodeCache | None:
    """This node's image cache (image_cache_dir), or None when it is off."""
    if settings is None:
        return None
    try:
        return NodeCache(settings.directory, settings.sqlite_db, settings.max_size, settings.stall_time)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"image_cache_dir {settings.directory} is not usable: {exc}") from None


def build_scrubber(settings: Settings) -> Scrubber:
    """`glimpse scrub`: the configured database and stores, Glance's scrub options."""
    sessions = make_sessionmaker(current_engine(settings))
    node = node_name(settings)
    timing = ScrubTiming(
        scrub_time=settings.scrub_time,
        pool_size=settings.scrub_pool_size,
        stale_after=timedelta(seconds=settings.task_stale_after),
    )
    return Scrubber(ScrubQueue(sessions), build_stores(settings, node), node, timing)


def hold_database(settings: Settings, what: str) -> None:
    """This process uses the embedded database until it exits: `glimpse db restore` refuses meanwhile."""
    embedded.hold_shared(settings.database_url, what)


def backup_database(settings: Settings, target: Path) -> embedded.Copy:
    return embedded.backup(settings.database_url, target)


def restore_database(settings: Settings, source: Path) -> tuple[embedded.Copy, Path | None]:
    return embedded.restore(settings.database_url, source)


def purge_database(settings: Settings, age_in_days: int, max_rows: int) -> dict[str, int]:
    return purge(make_sessionmaker(current_engine(settings)), age_in_days, max_rows)


def build_metadef_files(settings: Settings) -> MetadefFiles:
    """`glimpse db load-metadefs`, `unload-metadefs`, `export-metadefs` on the configured database."""
    return MetadefFiles(make_sessionmaker(current_engine(settings)))


def build_glance_import(settings: Settings, source_url: str) -> GlanceImport:
    """`glimpse db import-glance`: the Glance database at source_url into the configured one."""
    sessions = make_sessionmaker(current_engine(settings))
    stores = build_stores(settings, node_name(settings))
    maintenance = StoreMaintenance(ImageRepository(sessions), stores, settings.hashing_algorithm)
    return GlanceImport(GlanceDatabase(source_url), ImageSnapshots(sessions), maintenance)


def import_options(settings: Settings) -> ImportOptions:
    options = ImportOptions(
        methods=tuple(m for m in settings.enabled_import_methods if m in IMPLEMENTED_IMPORT_METHODS),
        egress=egress_policy(settings),
        plugins=settings.import_plugins,
        conversion_format=settings.conversion_format,
        qemu_limits=ProcessLimits(settings.qemu_img_memory_limit * 1024 * 1024, settings.qemu_img_cpu_time_limit),
        inject=settings.inject_properties,
        inject_ignore_roles=settings.inject_ignore_roles,
        remote_endpoints=settings.remote_endpoints,
        download_properties=settings.download_properties,
    )
    return options


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    messages = {
        404: "The resource could not be found.",
        405: f"The method {request.method} is not allowed for this resource.",
    }
    return error_response(request, exc.status_code, messages.get(exc.status_code, str(exc.detail)), headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """Starlette calls this outside every middleware: the line names the request itself, and the response
    gets its request id header here."""
    request_id = request.scope.get("request_id", "")
    with logs.bound(request.scope):
        log.exception("Unexpected error on %s %s (%s)", request.method, request.url.path, request_id or "-")
    logs.mark_logged(exc)  # uvicorn's "Exception in ASGI application" would repeat the traceback
    headers = {"x-openstack-request-id": request_id} if request_id else None
    return error_response(request, 500, "The server failed to complete the request; see its log.", headers)


def auth_middleware(settings: Settings, policy: Policy) -> Middleware:
    """No authentication (headers give the context) or Keystone, as [paste_deploy] flavor says."""
    if settings.auth_flavor in ("", "noauth"):
        return Middleware(NoAuthContextMiddleware, policy=policy)
    if settings.auth_flavor != "keystone":
        raise ConfigError(f"[paste_deploy] flavor = {settings.auth_flavor} is unknown: use keystone or leave it empty.")
    ks = settings.keystone
    missing = [k for k in ("auth_url", "username", "password") if not ks.get(k)]
    if missing:
        raise ConfigError(f"flavor = keystone needs [keystone_authtoken] {', '.join(missing)}.")
    if ks.get("auth_type") not in (None, "password"):
        raise ConfigError(f"[keystone_authtoken] auth_type = {ks['auth_type']} is not supported: use password.")
    require("keystoneauth1", "[paste_deploy] flavor = keystone")
    from glimpse.auth.keystone import KeystoneSettings, KeystoneValidator

    keystone = KeystoneSettings(
        auth_url=str(ks["auth_url"]),
        www_authenticate_uri=str(ks.get("www_authenticate_uri") or ks.get("auth_uri") or ks["auth_url"]),
        username=str(ks["username"]),
        password=str(ks["password"]),
        project_name=str(ks.get("project_name") or "service"),
        user_domain_name=str(ks.get("user_domain_name") or "Default"),
        project_domain_name=str(ks.get("project_domain_name") or "Default"),
        token_cache_time=as_int(ks.get("token_cache_time") or 300),
        timeout=as_float(ks.get("http_connect_timeout") or 10.0),
    )
    validator = KeystoneValidator(keystone, token_cache(ks))
    return Middleware(
        KeystoneAuthMiddleware, validator=validator, policy=policy, www_authenticate_uri=keystone.www_authenticate_uri
    )


def token_cache(ks: dict[str, object]) -> TokenCache:
    """In the process, or shared through memcached or Redis with keystonemiddleware's security strategy."""
    secret = ks.get("memcache_secret_key")
    try:
        protection = Protection(str(ks.get("memcache_security_strategy") or "none"), str(secret) if secret else None)
    except ValueError as exc:
        raise ConfigError(f"[keystone_authtoken] {exc}") from None
    if not (ks.get("memcached_servers") or ks.get("redis_url")):
        return InProcessCache()
    if protection.strategy == "none":
        log.warning(
            "[keystone_authtoken] token validations are shared through %s without memcache_security_strategy: "
            "anyone who can write to it can forge a validation. Set MAC or ENCRYPT and memcache_secret_key.",
            "memcached" if ks.get("memcached_servers") else "Redis",
        )
    if ks.get("memcached_servers"):
        require("pymemcache", "[keystone_authtoken] memcached_servers")
        return MemcachedCache([str(s) for s in as_list(ks["memcached_servers"])], protection)
    require("redis", "[keystone_authtoken] redis_url")
    return RedisCache(str(ks["redis_url"]), protection)


def dashboard_path(path: str) -> bool:
    return path == DASHBOARD_BASE or path.startswith(DASHBOARD_BASE + "/")


def cors_rules(settings: Settings) -> CorsRules:
    rules = CorsRules.from_settings(settings)
    if rules.allowed_origins and settings.auth_flavor in ("", "noauth"):
        log.warning(
            "[cors] allowed_origin = %s without authentication: web pages of %s act as an administrator "
            "through the visitor's browser.", ",".join(rules.allowed_origins), "any site" if "*" in
            rules.allowed_origins else "those origins",
        )  # fmt: skip
    return rules


def node_status(settings: Settings, services: Services, metrics: Metrics | None) -> Callable[[], dict[str, object]]:
    """What `glimpse status` shows beside the checks (the detailed health check's "glimpse" part, in JSON)."""

    def status() -> dict[str, object]:
        figures: dict[str, object] = {
            "version": version(),
            "node": node_name(settings),
            "workers": settings.workers,
            "pid": os.getpid(),
            "uploads_in_progress": metrics.gauge_total("glimpse_uploads_in_progress") if metrics else None,
            "imports_in_progress": metrics.gauge_total("glimpse_imports_in_progress") if metrics else None,
            "stores": list(services.store_checks),
        }
        figures["tasks"] = None
        if services.engine is not None:
            try:
                queue = task_queue(services.engine)
            except Exception:  # the database check of the same answer says why
                return figures
            figures["tasks"] = {
                "pending": queue.pending,
                "processing": queue.processing,
                "oldest_pending_age": round(queue.oldest_pending_age, 3),
            }
        return figures

    return status


def reloader(settings: Settings, policy: Policy) -> Callable[[], None]:
    """What SIGHUP does: the policy file and the log levels (debug, default_log_levels) read again; a file
    that no longer reads leaves everything as it was."""

    def reload() -> None:
        try:
            fresh = read_log_settings(settings.config_files, settings.overrides)
            if fresh.log_config_append:
                logs.configure(fresh)
            else:
                logs.apply_levels(fresh)
            policy_file = policy.reload()
        except Exception as exc:  # a typo in a file must not stop a serving process
            log.error("SIGHUP: reload failed, the previous policy and log levels stay: %s", exc)
            return
        log.info("SIGHUP: reloaded policy file %s and log levels (debug %s)", policy_file or "(none)", fresh.debug)

    return reload


def _on_sighup(reload: Callable[[], None]) -> None:
    """SIGHUP calls `reload` in this event loop; not where signals cannot be caught (a test's thread)."""
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    except (RuntimeError, ValueError, NotImplementedError):
        return


def _stop_transfers_after(transfers: Transfers, timeout: int) -> None:
    """On SIGTERM (or SIGINT), `timeout` seconds later the transfers still running stop, ahead of uvicorn's
    own deadline (a few seconds later), so that an upload answers 503 after cleaning up rather than being
    cancelled. uvicorn's handler keeps running: it stops accepting and waits for the connections."""
    if not timeout:
        return
    loop = asyncio.get_running_loop()

    def stop() -> None:
        stopped = transfers.stop()
        log.warning("graceful_shutdown_timeout (%d s) passed: %d upload(s) stopped, back to queued", timeout, stopped)

    armed: list[asyncio.TimerHandle] = []

    def wrap(previous: Callable[[int, object], object] | int | None) -> Callable[[int, object], None]:
        def handler(sig: int, frame: object) -> None:
            if not armed:
                armed.append(loop.call_later(timeout, stop))
            if callable(previous):
                previous(sig, frame)

        return handler

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, wrap(signal.getsignal(sig)))  # type: ignore[arg-type]
    except ValueError:  # not the main thread (a test's server): no signals to catch
        return


def create_app(
    settings: Settings, services: Services | None = None, policy: Policy | None = None, events: Events | None = None
) -> Starlette:
    """The ASGI app; services built here are measured (stores, pool) when metrics are on, given ones are not."""
    logsafe.install()  # no log line carries a location's or a URL's credentials
    logs.install_context()
    policy = policy or Policy(settings.policy_file)
    auth = auth_middleware(settings, policy)
    metrics = Metrics() if settings.metrics.enabled else None
    events = events or build_events(settings)
    services = services or build_services(settings, policy, metrics=metrics, events=events)
    notifier = events.notifier if isinstance(events.notifier, QueuedNotifier) else None
    if notifier is not None and metrics is not None:
        notifier.listener = metrics.notification_counter()
    tracking = metrics.tracking_imports if metrics else None
    worker = TaskWorker(services.runner, max_workers=settings.import_max_workers, tracking=tracking)
    prefetcher = None
    if settings.image_cache is not None:
        prefetcher = CachePrefetcher(services.cache, settings.image_cache.prefetcher_interval)
    transfers = Transfers(settings.data_transfer_threads)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        worker.start()
        if prefetcher is not None:
            prefetcher.start()
        _on_sighup(reloader(settings, policy))
        _stop_transfers_after(transfers, settings.graceful_shutdown_timeout)
        yield
        # uvicorn comes here once the connections closed, or when its own deadline passed.
        stopped = transfers.stop()
        if stopped:
            log.warning("Shutting down: %d upload(s) did not finish in time and go back to queued", stopped)
        if not await transfers.drained(timeout=SHUTDOWN_MARGIN):
            log.error("Shutting down: transfers still running; the next start recovers their images")
        worker.stop()
        if prefetcher is not None:
            prefetcher.stop()
        if notifier is not None:
            notifier.close()  # what is still queued gets a moment to go out

    import_methods = list(services.imports.options.methods)
    cors = cors_rules(settings)
    dashboard = dashboard_middleware(
        settings, policy, images=services.images, members=services.members, quotas=services.quotas,
        import_methods=import_methods, imports=services.imports, transfers=transfers,
        metadefs=services.metadefs, meter=metrics,
    )  # fmt: skip
    routes = [
            *versions.routes,
            *healthcheck_routes,
            *images.routes,
            *image_data.routes,
            *members.routes,
            *imports.routes,
            *quotas.routes,
            *discovery.routes,
            *metadefs.routes,
            *metadef_entries.routes,
        *cache.routes,
    ]  # fmt: skip
    measuring = []
    if metrics is not None:
        if services.engine is not None:
            metrics.extra.append(TaskQueueCollector(partial(task_queue, services.engine)))
        if settings.image_cache is not None:
            metrics.extra.append(CacheCollector(services.cache.counters))
        templates: dict[object, str] = {route.endpoint: route.path for route in routes}
        fixed = partial(_fixed_route, settings.metrics.path)
        measuring.append(Middleware(MetricsMiddleware, metrics=metrics, config=settings.metrics, templates=templates,
                                    fixed=fixed))  # fmt: skip
    app = Starlette(
        lifespan=lifespan,
        routes=routes,
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(AccessLogMiddleware),
            *measuring,
            # First, as Glance's cors filter: refusals of the limits reach an allowed page readable too.
            Middleware(CorsMiddleware, rules=cors, exempt=dashboard_path),
            Middleware(RequestLimitsMiddleware, limits=RequestLimits.from_settings(settings)),
            dashboard,
            Middleware(CrossSiteGuard, trusted=cors.allows),
            auth,
        ],
        exception_handlers={GlimpseError: domain_error, HTTPException: http_error, Exception: unexpected_error},
    )
    app.router.redirect_slashes = False  # Glance answers 404 for /v2/images/ and /v2/images/..%2f
    app.state.settings = settings
    app.state.policy = policy
    app.state.images = services.images
    app.state.members = services.members
    app.state.quotas = services.quotas
    app.state.imports = services.imports
    app.state.metadefs = services.metadefs
    app.state.cache = services.cache
    app.state.import_methods = import_methods
    app.state.transfers = transfers
    deep = DeepChecks(
        database=partial(ping, services.engine) if services.engine is not None else None,
        stores=services.store_checks,
        status=node_status(settings, services, metrics),
    )
    app.state.health = Health(settings.healthcheck, deep)
    app.state.metrics = metrics
    app.state.notifier = notifier
    return app


def _fixed_route(metrics_path: str, path: str) -> str | None:
    """The label of requests answered before routing: the dashboard's and the scrapes'."""
    if dashboard_path(path):
        return DASHBOARD_BASE
    return metrics_path if path == metrics_path else None


def app_from_environment() -> Starlette:
    """Factory for uvicorn worker processes: settings arrive as JSON in the environment."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the app's lifespan handles it
    args = json.loads(os.environ[SETTINGS_ENV])
    settings = load_settings(args["config_files"], args["config_dir"], args["overrides"])
    logsafe.install()
    logs.configure(settings.logging)  # every worker logs as the first process does, to the same place
    hold_database(settings, "serve")  # each worker: it outlives a parent killed with -9
    return create_app(settings)
