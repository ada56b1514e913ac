"""Glance's cache management API (2.14-2.18): GET/DELETE /v2/cache, PUT/DELETE /v2/cache/{image_id},
POST /v2/cache/clean and /v2/cache/prune, GET /v2/cache/nodes/{image_id}, with Glance's status codes."""

from __future__ import annotations

from dataclasses import asdict

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.api import deps
from glimpse.api.routing import resource
from glimpse.domain.image_cache import CacheService


def _cache(request: Request) -> CacheService:
    service: CacheService = request.app.state.cache
    return service


async def state(request: Request) -> Response:
    found = await run_in_threadpool(_cache(request).state, deps.context(request))
    return JSONResponse({"cached_images": [asdict(entry) for entry in found.cached], "queued_images": found.queued})


async def clear(request: Request) -> Response:
    target = request.headers.get("x-image-cache-clear-target", "")
    await run_in_threadpool(_cache(request).clear, deps.context(request), target)
    return Response(status_code=204)


async def queue(request: Request) -> Response:
    await run_in_threadpool(_cache(request).queue, deps.context(request), request.path_params["image_id"])
    return Response(status_code=202)


async def delete(request: Request) -> Response:
    await run_in_threadpool(_cache(request).delete, deps.context(request), request.path_params["image_id"])
    return Response(status_code=204)


async def clean(request: Request) -> Response:
    await run_in_threadpool(_cache(request).clean, deps.context(request))
    return Response(status_code=200)


async def prune(request: Request) -> Response:
    files, pruned = await run_in_threadpool(_cache(request).prune, deps.context(request))
    return JSONResponse({"total_files_pruned": files, "total_bytes_pruned": pruned})


async def nodes(request: Request) -> Response:
    found = await run_in_threadpool(_cache(request).nodes, deps.context(request), request.path_params["image_id"])
    return JSONResponse(found)


routes = [
    resource("/v2/cache", get=state, delete=clear),
    resource("/v2/cache/clean", post=clean),
    resource("/v2/cache/prune", post=prune),
    resource("/v2/cache/nodes/{image_id}", get=nodes),
    resource("/v2/cache/{image_id}", put=queue, delete=delete),
]
