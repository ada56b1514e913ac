"""Usage and per-project quotas: Glance's GET /v2/info/usage, and /v2/quotas for administrators."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.api import deps
from glimpse.api.routing import resource
from glimpse.domain.quotas import QuotaService


def _quotas(request: Request) -> QuotaService:
    service: QuotaService = request.app.state.quotas
    return service


async def usage(request: Request) -> Response:
    found = await run_in_threadpool(_quotas(request).usage, deps.context(request))
    return JSONResponse({"usage": found})


async def index(request: Request) -> Response:
    found = await run_in_threadpool(_quotas(request).list, deps.context(request))
    return JSONResponse({"quotas": [{"project_id": p, **limits} for p, limits in found.items()]})


async def show(request: Request) -> Response:
    project = request.path_params["project_id"]
    found = await run_in_threadpool(_quotas(request).usage, deps.context(request), project)
    return JSONResponse({"project_id": project, "usage": found})


async def update(request: Request) -> Response:
    body = await deps.json_body(request)
    project = request.path_params["project_id"]
    found = await run_in_threadpool(_quotas(request).set, deps.context(request), project, body)
    return JSONResponse({"project_id": project, "usage": found})


routes = [
    resource("/v2/info/usage", get=usage),
    resource("/v2/quotas", get=index),
    resource("/v2/quotas/{project_id}", get=show, put=update),
]
