"""Composition root: the only place that builds the database engine, the stores and the app.

`build_services` wires the concrete repositories, stores and policy into the use cases; `create_app` puts
them behind the HTTP front. The parts each reads its own settings in glimpse/assembly/.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Engine
from starlette.applications import Starlette

from glimpse import logs, logsafe
from glimpse.assembly import domain_rules, lifecycle, observability, web
from glimpse.assembly.authentication import auth_middleware
from glimpse.assembly.database import current_engine
from glimpse.assembly.egress import egress_policy
from glimpse.assembly.notifications import build_events, with_outbox
from glimpse.assembly.operations import hold_database, scrubber
from glimpse.assembly.stores import (
    build_cache,
    build_cache_nodes,
    build_stores,
    import_scratch,
    metered,
    node_name,
    staging_area,
    store_probes,
)
from glimpse.assembly.webhooks import webhook_events, webhook_sender, webhook_service
from glimpse.auth.policy import Policy
from glimpse.auth.unified_limits import KeystoneLimits
from glimpse.config import Settings, load_settings
from glimpse.dashboard import dashboard_middleware
from glimpse.db.audit import AuditRecords, Leases
from glimpse.db.dashboard_sessions import DashboardSessions
from glimpse.db.metadefs import MetadefRepository
from glimpse.db.quotas import QuotaRepository
from glimpse.db.recycle_bin import RecycleBinRepository
from glimpse.db.redis_sessions import RedisSessions
from glimpse.db.repositories import ImageRepository
from glimpse.db.resumable import ResumableUploadRepository
from glimpse.db.retention import RetentionRecords
from glimpse.db.session import LockedOut, SessionFactory, make_sessionmaker, read_briefly, write_briefly
from glimpse.db.shared_data import SharedData
from glimpse.db.tasks import TaskRepository
from glimpse.domain.access import ImageAccess
from glimpse.domain.audit import AuditService
from glimpse.domain.dedup import Dedup
from glimpse.domain.families import Families
from glimpse.domain.image_cache import CacheService
from glimpse.domain.image_data import ImageData
from glimpse.domain.image_locations import ImageLocations
from glimpse.domain.import_runner import ImportRunner
from glimpse.domain.import_sources import Sources
from glimpse.domain.imports import ImportService
from glimpse.domain.members import MemberService
from glimpse.domain.metadefs import MetadefService
from glimpse.domain.notifications import Events
from glimpse.domain.quotas import QuotaService
from glimpse.domain.recycle_bin import RecycleBin
from glimpse.domain.resumable import ResumableUploads
from glimpse.domain.retention import RetentionService
from glimpse.domain.service import ImageService
from glimpse.domain.session_records import SessionStore
from glimpse.domain.signatures import Signatures
from glimpse.domain.stores import StoreMaintenance
from glimpse.domain.webhooks import WebhookService
from glimpse.extras import require
from glimpse.messaging.queue import QueuedNotifier
from glimpse.metrics.database import instrument_pool
from glimpse.metrics.instruments import Metrics
from glimpse.sources.key_manager import CastellanCertificates
from glimpse.sources.web import download
from glimpse.streaming import Transfers
from glimpse.webhook_worker import WebhookSender
from glimpse.worker import CachePrefetcher, Periodic, TaskWorker

SETTINGS_ENV = "GLIMPSE_SERVE_ARGS"


@dataclass(frozen=True)
class Services:
    images: ImageService
    members: MemberService
    quotas: QuotaService
    imports: ImportService
    stores: StoreMaintenance
    runner: ImportRunner
    resumable: ResumableUploads
    metadefs: MetadefService
    cache: CacheService
    audit: AuditService
    retention: RetentionService
    bin: RecycleBin
    families: Families
    dashboard_sessions: SessionStore
    engine: Engine | None = None
    store_checks: Mapping[str, Callable[[], str]] = field(default_factory=dict)  # the detailed health check's
    webhooks: WebhookService | None = None
    webhook_sender: WebhookSender | None = None  # started by the serving process's lifespan


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
    policy = policy or Policy(settings.policy_file, settings.policy_options)
    sessions = make_sessionmaker(engine)
    events = with_outbox(events, webhook_events(settings, sessions))
    node = node_name(settings)
    limits = domain_rules.limits(settings)
    repo = ImageRepository(sessions)
    external = None
    if settings.use_keystone_limits:
        require("oslo_limit", "use_keystone_limits = true")
        external = KeystoneLimits(list(settings.config_files))
    quotas = QuotaService(QuotaRepository(sessions), policy, settings.user_storage_quota, external)
    schema = domain_rules.image_schema(settings)
    rules = domain_rules.format_rules(settings)
    protections = domain_rules.property_protections(settings, policy)
    stores = build_stores(settings, node)
    checks = store_probes(stores)
    if metrics is not None:
        stores = metered(stores, metrics)
    staging = staging_area(settings, node)
    access = ImageAccess(repo, policy)
    signatures = Signatures(CastellanCertificates(settings.key_manager))
    cache_nodes = build_cache_nodes(settings.image_cache, sessions)
    node_cache = build_cache(settings.image_cache, cache_nodes)
    serve_from_cache = settings.image_cache is not None and settings.image_cache.serve_downloads
    dedup = Dedup(SharedData(sessions), stores, settings.deduplicate_image_data, settings.hashing_algorithm)
    uploads = ImageData(
        repo, stores, limits, node, access, quotas, rules,
        signatures=signatures, cache=node_cache, serve_from_cache=serve_from_cache, events=events, dedup=dedup,
    )  # fmt: skip
    locations = ImageLocations(repo, stores, limits, access, settings.delayed_delete)
    recycle_bin = RecycleBin(
        RecycleBinRepository(sessions), repo, policy, scrubber(settings, sessions, stores, node), quotas,
        settings.bin_retention, events, (settings.limit_param_default, settings.api_limit_max),
    )  # fmt: skip
    images = ImageService(
        repo, stores, limits, policy, quotas, uploads, locations, schema,
        staging=staging, protections=protections, delayed_delete=settings.delayed_delete, events=events,
        retention=recycle_bin.keep_for,
    )  # fmt: skip
    members = MemberService(repo, policy, settings.image_member_quota, events)
    options = domain_rules.import_options(settings, egress_policy(settings))
    sources = Sources(options, staging, download, settings.image_size_cap)
    tasks = TaskRepository(sessions)
    imports = ImportService(
        repo, stores, limits, quotas, uploads, tasks, policy, sources, node,
        signatures=signatures, protections=protections, events=events,
    )  # fmt: skip
    timing = domain_rules.import_timing(settings)
    scratch = import_scratch(settings, node)
    resumable = ResumableUploads(
        repo, ResumableUploadRepository(sessions), stores, uploads, access, quotas, limits, rules,
        domain_rules.upload_timing(settings),
    )  # fmt: skip
    dashboard_sessions = dashboard_session_store(settings, sessions)
    runner = ImportRunner(
        repo, stores, limits, quotas, uploads, rules, tasks, sources, scratch, node, timing,
        signatures=signatures, events=events, meter=metrics, sweep_also=(resumable.sweep, dashboard_sessions.sweep),
        dedup=dedup,
    )  # fmt: skip
    maintenance = StoreMaintenance(repo, stores, settings.hashing_algorithm, dedup)
    catalog = MetadefService(MetadefRepository(sessions), policy, domain_rules.page_limits(settings))
    cache_service = CacheService(node_cache, repo, policy, uploads.cache_image, cache_nodes)
    audit = AuditService(AuditRecords(sessions), policy, settings.limit_param_default)
    retention = RetentionService(
        RetentionRecords(sessions), Leases(sessions), policy, images.delete, lease_holder(node),
        lease_seconds=settings.audit.lease_seconds,
    )  # fmt: skip
    hooks = webhook_service(settings, sessions, policy)
    sender = webhook_sender(settings, sessions)
    return Services(
        images, members, quotas, imports, maintenance, runner, resumable, catalog, cache_service, audit, retention,
        recycle_bin, Families(images), dashboard_sessions, engine, checks, hooks, sender,
    )  # fmt: skip


def dashboard_session_store(settings: Settings, sessions: SessionFactory) -> SessionStore:
    """[dashboard] session_backend: the shared database (default) or Redis."""
    if settings.dashboard_redis_url is None:
        return DashboardSessions(sessions)
    require("redis", "[dashboard] session_backend = redis")
    return RedisSessions(settings.dashboard_redis_url)


def lease_holder(node: str) -> str:
    """This process among every node's: a lease names the one process allowed to act."""
    return f"{node}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def create_app(
    settings: Settings, services: Services | None = None, policy: Policy | None = None, events: Events | None = None
) -> Starlette:
    """The ASGI app; services built here are measured (stores, pool) when metrics are on, given ones are not."""
    logsafe.install()  # no log line carries a location's or a URL's credentials
    logs.install_context()
    policy = policy or Policy(settings.policy_file, settings.policy_options)
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
    # Data a delete could not remove (its store away) is retried every wakeup_time seconds, once it has waited that
    # long: the deleting request is done with it by then. Delayed delete's own data stays `glimpse scrub`'s.
    every = max(settings.wakeup_time, 1)
    periodic = [
        Periodic(lambda: services.bin.scrubber.run_leftovers(timedelta(seconds=every)), every, "leftovers",
                 "Removing the data earlier deletes left")
    ]  # fmt: skip
    if settings.audit.run_interval:
        periodic.append(
            Periodic(services.retention.run_policies, settings.audit.run_interval, "retention",
                     "The scheduled retention run")
        )  # fmt: skip

    import_methods = list(services.imports.options.methods)
    cors = web.cors_rules(settings)
    dashboard = dashboard_middleware(
        settings, policy, session_store=services.dashboard_sessions, images=services.images,
        members=services.members, quotas=services.quotas,
        import_methods=import_methods, imports=services.imports, transfers=transfers,
        metadefs=services.metadefs, meter=metrics, webhooks=services.webhooks, recycle_bin=services.bin,
        families=services.families, resumable=services.resumable,
    )  # fmt: skip
    routes = list(web.ROUTES)
    measuring = observability.measuring(settings, metrics, routes, services.engine, services.cache)
    app = Starlette(
        lifespan=lifecycle.lifespan(
            settings, policy, worker, prefetcher, transfers, notifier, periodic, services.webhook_sender
        ),
        routes=routes,
        middleware=web.middleware(settings, cors, dashboard, auth, measuring),
        exception_handlers=web.EXCEPTION_HANDLERS,
    )
    app.router.redirect_slashes = False  # Glance answers 404 for /v2/images/ and /v2/images/..%2f
    app.state.settings = settings
    app.state.policy = policy
    app.state.images = services.images
    # api/deps.read says why; services given without their engine (tests) keep the thread
    on_sqlite = services.engine is not None and services.engine.dialect.name == "sqlite"
    app.state.inline_reads = (read_briefly, LockedOut) if on_sqlite else None
    # A create asks Keystone for the project's limits when it uses unified limits (every 30 s a project): a remote
    # call, which must not hold the event loop.
    local_limits = services.quotas.external_limits is None
    app.state.inline_writes = (write_briefly, LockedOut) if on_sqlite and local_limits else None
    app.state.members = services.members
    app.state.quotas = services.quotas
    app.state.imports = services.imports
    app.state.resumable = services.resumable
    app.state.metadefs = services.metadefs
    app.state.cache = services.cache
    app.state.audit = services.audit
    app.state.retention = services.retention
    app.state.webhooks = services.webhooks
    app.state.bin = services.bin
    app.state.families = services.families
    app.state.import_methods = import_methods
    app.state.transfers = transfers
    app.state.health = observability.health(settings, services.engine, services.store_checks, metrics)
    app.state.metrics = metrics
    app.state.notifier = notifier
    return app


def app_from_environment() -> Starlette:
    """Factory for uvicorn worker processes: settings arrive as JSON in the environment."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the app's lifespan handles it
    args = json.loads(os.environ[SETTINGS_ENV])
    settings = load_settings(args["config_files"], args["config_dir"], args["overrides"])
    logsafe.install()
    logs.configure(settings.logging)  # every worker logs as the first process does, to the same place
    hold_database(settings, "serve")  # each worker: it outlives a parent killed with -9
    app = create_app(settings)
    lifecycle.settle_garbage_collector()
    return app
