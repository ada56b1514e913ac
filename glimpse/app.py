"""Composition root: the only place that builds the database engine, the stores and the app."""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from glimpse.api import versions
from glimpse.api.errors import domain_error, error_response
from glimpse.api.limits import RequestLimits, RequestLimitsMiddleware
from glimpse.api.middleware import KeystoneAuthMiddleware, NoAuthContextMiddleware, RequestIdMiddleware
from glimpse.api.v2 import discovery, image_data, images, imports, members, quotas
from glimpse.auth.keystone import KeystoneSettings, KeystoneValidator
from glimpse.auth.policy import Policy
from glimpse.auth.token_cache import InProcessCache, MemcachedCache, RedisCache, TokenCache
from glimpse.auth.unified_limits import KeystoneLimits
from glimpse.config import BackendConfig, Settings, load_settings
from glimpse.dashboard import dashboard_middleware
from glimpse.db import migrate
from glimpse.db.quotas import QuotaRepository
from glimpse.db.repositories import ImageRepository
from glimpse.db.session import make_engine, make_sessionmaker
from glimpse.db.tasks import TaskRepository
from glimpse.domain.imports import ImportOptions, ImportService
from glimpse.domain.members import MemberService
from glimpse.domain.quotas import QuotaService
from glimpse.domain.schema import ImageSchema
from glimpse.domain.service import ImageService, Limits
from glimpse.domain.stores import StoreMaintenance
from glimpse.errors import ConfigError, GlimpseError
from glimpse.formats.inspection import FormatRules
from glimpse.sources.web import UrlFilter, download
from glimpse.store.factory import build_registry
from glimpse.store.filesystem import FilesystemStore, node_tag
from glimpse.store.registry import StoreRegistry
from glimpse.worker import TaskWorker

log = logging.getLogger(__name__)

# Import methods this build carries out; the operator's enabled_import_methods can only narrow them.
IMPLEMENTED_IMPORT_METHODS: tuple[str, ...] = ("glance-direct", "web-download", "copy-image", "glance-download")
SETTINGS_ENV = "GLIMPSE_SERVE_ARGS"


def node_name(settings: Settings) -> str:
    return f"{socket.gethostname()}:{settings.bind_port}"


def build_stores(settings: Settings, node: str) -> StoreRegistry:
    if settings.backends:
        return build_registry(settings.backends, settings.default_backend, multi=settings.multi_store, node=node)
    datadir = {"filesystem_store_datadir": settings.filesystem_store_datadir}
    legacy = tuple(BackendConfig(kind, kind, f"{kind} store", options=datadir) for kind in settings.stores)
    return build_registry(legacy, settings.default_store, multi=False, node=node)


@dataclass(frozen=True)
class Services:
    images: ImageService
    members: MemberService
    quotas: QuotaService
    imports: ImportService
    stores: StoreMaintenance


def build_services(settings: Settings, policy: Policy | None = None, *, migrate_embedded: bool = True) -> Services:
    engine = make_engine(settings.database_url)
    if not migrate.is_current(engine):
        if settings.embedded_database and migrate_embedded:
            migrate.upgrade(engine)
        else:
            raise ConfigError(
                f"The database is at revision {migrate.current_revision(engine) or 'none'}, "
                f"not {migrate.head_revision()}: run 'glimpse db sync' first."
            )
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
    external = KeystoneLimits(list(settings.config_files)) if settings.use_keystone_limits else None
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
    stores = build_stores(settings, node)
    images = ImageService(repo, stores, limits, node, policy, quotas, schema, rules)
    members = MemberService(repo, policy, settings.image_member_quota)
    imports = build_imports(settings, images, sessions, policy, node)
    maintenance = StoreMaintenance(repo, stores, settings.hashing_algorithm)
    return Services(images, members, quotas, imports, maintenance)


def build_imports(
    settings: Settings, images: ImageService, sessions: sessionmaker[Session], policy: Policy, node: str
) -> ImportService:
    f = settings.import_filter
    url_filter = UrlFilter(
        allowed_schemes=tuple(f.get("allowed_schemes") or ()),  # type: ignore[call-overload]
        disallowed_schemes=tuple(f.get("disallowed_schemes") or ()),  # type: ignore[call-overload]
        allowed_hosts=tuple(f.get("allowed_hosts") or ()),  # type: ignore[call-overload]
        disallowed_hosts=tuple(f.get("disallowed_hosts") or ()),  # type: ignore[call-overload]
        allowed_ports=tuple(int(p) for p in f.get("allowed_ports") or ()),  # type: ignore[attr-defined]
        disallowed_ports=tuple(int(p) for p in f.get("disallowed_ports") or ()),  # type: ignore[attr-defined]
        allow_private_addresses=bool(f.get("allow_private_addresses")),
    )
    options = ImportOptions(
        methods=tuple(m for m in settings.enabled_import_methods if m in IMPLEMENTED_IMPORT_METHODS),
        url_filter=url_filter,
        plugins=settings.import_plugins,
        conversion_format=settings.conversion_format,
        inject=settings.inject_properties,
        inject_ignore_roles=settings.inject_ignore_roles,
        remote_endpoints=settings.remote_endpoints,
        download_properties=settings.download_properties,
    )
    staging = FilesystemStore("os_glance_staging_store", settings.staging_dir, node)
    scratch = settings.staging_dir / f"work-{node_tag(node)}"
    return ImportService(images, TaskRepository(sessions), policy, staging, scratch, options, node, download)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    messages = {
        404: "The resource could not be found.",
        405: f"The method {request.method} is not allowed for this resource.",
    }
    return error_response(request, exc.status_code, messages.get(exc.status_code, str(exc.detail)), headers)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("Unexpected error on %s %s", request.method, request.url.path)
    return error_response(request, 500, "The server failed to complete the request; see its log.")


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
    keystone = KeystoneSettings(
        auth_url=str(ks["auth_url"]),
        www_authenticate_uri=str(ks.get("www_authenticate_uri") or ks.get("auth_uri") or ks["auth_url"]),
        username=str(ks["username"]),
        password=str(ks["password"]),
        project_name=str(ks.get("project_name") or "service"),
        user_domain_name=str(ks.get("user_domain_name") or "Default"),
        project_domain_name=str(ks.get("project_domain_name") or "Default"),
        token_cache_time=int(ks.get("token_cache_time") or 300),  # type: ignore[call-overload]
        timeout=float(ks.get("http_connect_timeout") or 10.0),  # type: ignore[arg-type]
    )
    cache: TokenCache = InProcessCache()
    if ks.get("memcached_servers"):
        cache = MemcachedCache(list(ks["memcached_servers"]))  # type: ignore[call-overload]
    elif ks.get("redis_url"):
        cache = RedisCache(str(ks["redis_url"]))
    validator = KeystoneValidator(keystone, cache)
    return Middleware(
        KeystoneAuthMiddleware, validator=validator, policy=policy, www_authenticate_uri=keystone.www_authenticate_uri
    )


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    policy = Policy(settings.policy_file)
    auth = auth_middleware(settings, policy)
    services = services or build_services(settings, policy)
    worker = TaskWorker(services.imports, abandoned_after=settings.upload_heartbeat_timeout)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        worker.start()
        yield
        worker.stop()

    import_methods = list(services.imports.options.methods)
    dashboard = dashboard_middleware(
        settings, policy, images=services.images, members=services.members, quotas=services.quotas,
        import_methods=import_methods, imports=services.imports,
    )  # fmt: skip
    app = Starlette(
        lifespan=lifespan,
        routes=[
            *versions.routes,
            *images.routes,
            *image_data.routes,
            *members.routes,
            *imports.routes,
            *quotas.routes,
            *discovery.routes,
        ],
        middleware=[
            Middleware(RequestIdMiddleware),
            Middleware(RequestLimitsMiddleware, limits=RequestLimits.from_settings(settings)),
            dashboard,
            auth,
        ],
        exception_handlers={GlimpseError: domain_error, HTTPException: http_error, Exception: unexpected_error},
    )
    app.router.redirect_slashes = False  # Glance answers 404 for /v2/images/ and /v2/images/..%2f
    app.state.settings = settings
    app.state.images = services.images
    app.state.members = services.members
    app.state.quotas = services.quotas
    app.state.imports = services.imports
    app.state.import_methods = import_methods
    return app


def app_from_environment() -> Starlette:
    """Factory for uvicorn worker processes: settings arrive as JSON in the environment."""
    args = json.loads(os.environ[SETTINGS_ENV])
    return create_app(load_settings(args["config_files"], args["config_dir"], args["overrides"]))
