"""The HTTP front: the API's routes, the middleware stack in its order, and the errors answered in Glance's format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ExceptionHandler

from glimpse import logs
from glimpse.api import versions
from glimpse.api.access_log import AccessLogMiddleware
from glimpse.api.cors import CorsMiddleware, CorsRules
from glimpse.api.errors import domain_error, error_response
from glimpse.api.healthcheck import routes as healthcheck_routes
from glimpse.api.limits import RequestLimits, RequestLimitsMiddleware
from glimpse.api.middleware import CrossSiteGuard, RequestIdMiddleware
from glimpse.api.v2 import (
    audit,
    cache,
    discovery,
    image_data,
    images,
    imports,
    lifecycle,
    members,
    metadef_entries,
    metadefs,
    quotas,
    uploads,
    webhooks,
)
from glimpse.assembly import log
from glimpse.config import Settings
from glimpse.dashboard.web import BASE as DASHBOARD_BASE
from glimpse.db.session import unreachable
from glimpse.errors import GlimpseError

ROUTES: list[Route] = [
    *versions.routes,
    *healthcheck_routes,
    *images.routes,
    *image_data.routes,
    *uploads.routes,
    *members.routes,
    *imports.routes,
    *quotas.routes,
    *discovery.routes,
    *metadefs.routes,
    *metadef_entries.routes,
    *cache.routes,
    *audit.routes,
    *webhooks.routes,
    *lifecycle.routes,
]


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
    gets its request id header here. A database server away is a 503 (clients retry those), logged in one line
    at most once a minute, not a 500 with a traceback per request."""
    request_id = request.scope.get("request_id", "")
    headers = {"x-openstack-request-id": request_id} if request_id else None
    logs.mark_logged(exc)  # uvicorn's "Exception in ASGI application" would repeat the traceback
    if unreachable(exc):
        with logs.bound(request.scope):
            _database_away.warning("database", "The database cannot be reached: %s", str(exc).split("\n")[0])
        return error_response(request, 503, "The image service's database cannot be reached; try again later.", headers)
    with logs.bound(request.scope):
        log.exception("Unexpected error on %s %s (%s)", request.method, request.url.path, request_id or "-")
    return error_response(request, 500, "The server failed to complete the request; see its log.", headers)


_database_away = logs.Occasional(log)

EXCEPTION_HANDLERS: Mapping[Any, ExceptionHandler] = {
    GlimpseError: domain_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}


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


def middleware(
    settings: Settings, cors: CorsRules, dashboard: Middleware, auth: Middleware, measuring: list[Middleware]
) -> list[Middleware]:
    """Outermost first: every request gets its id and access line before anything may refuse it."""
    return [
        Middleware(RequestIdMiddleware),
        Middleware(AccessLogMiddleware),
        *measuring,
        # First, as Glance's cors filter: refusals of the limits reach an allowed page readable too.
        Middleware(CorsMiddleware, rules=cors, exempt=dashboard_path),
        Middleware(RequestLimitsMiddleware, limits=RequestLimits.from_settings(settings)),
        dashboard,
        Middleware(CrossSiteGuard, trusted=cors.allows),
        auth,
    ]
