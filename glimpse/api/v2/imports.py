"""Interoperable import: PUT /v2/images/{id}/stage, POST /v2/images/{id}/import, and tasks (legacy POST too)."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from glimpse.api import deps
from glimpse.api.routing import resource
from glimpse.api.v2.image_data import declared_digests, expected_size
from glimpse.api.v2.views import isotime
from glimpse.domain.entities import Task
from glimpse.domain.imports import ImportService
from glimpse.domain.inputs import parse_count
from glimpse.domain.legacy_tasks import create_import_task


def _imports(request: Request) -> ImportService:
    service: ImportService = request.app.state.imports
    return service


# What a caller may have put in an import method; the rest of a task's input is the service's own bookkeeping
# (a remote endpoint and hash for glance-download, an operator's injected properties).
METHOD_FIELDS = ("name", "uri", "glance_image_id", "glance_region", "glance_service_interface")


def task_input_view(task: Task) -> dict[str, Any]:
    """An import task's input as Glance shows it: the image, the import request as the caller sent it, and
    the stores it goes to (Tempest and the clients read task.input.import_req.method.name)."""
    raw = task.input
    if not isinstance(raw.get("method"), dict):
        return raw
    stores = list(raw.get("stores") or [])
    request: dict[str, Any] = {"method": {k: v for k, v in raw["method"].items() if k in METHOD_FIELDS}}
    if stores:
        request["stores"] = stores
    if "all_stores_must_succeed" in raw:
        request["all_stores_must_succeed"] = raw["all_stores_must_succeed"]
    return {"image_id": task.image_id, "import_req": request, "backend": stores}


def task_view(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "input": task_input_view(task),
        "result": task.result,
        "owner": task.owner,
        "message": task.message,
        "image_id": task.image_id,
        "request_id": task.request_id,
        "user_id": task.user_id,
        "expires_at": isotime(task.expires_at),
        "created_at": isotime(task.created_at),
        "updated_at": isotime(task.updated_at),
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
    }


async def stage(request: Request) -> Response:
    declared = declared_digests(request)
    reader = deps.transfers(request).reader(request.stream())
    try:
        await deps.transfers(request).run(
            _imports(request).stage,
            deps.context(request),
            request.path_params["image_id"],
            reader,
            expected_size(request),
            declared,
        )
    except ClientDisconnect:
        return Response(status_code=400)
    return Response(status_code=204)


async def start(request: Request) -> Response:
    body = await deps.json_body(request)
    await run_in_threadpool(_imports(request).start, deps.context(request), request.path_params["image_id"], body)
    return Response(status_code=202)


async def image_tasks(request: Request) -> Response:
    found = await run_in_threadpool(
        _imports(request).image_tasks, deps.context(request), request.path_params["image_id"]
    )
    return JSONResponse({"tasks": [task_view(t) for t in found]})


async def index(request: Request) -> Response:
    q = request.query_params
    limits = deps.images(request).limits
    given = q.get("limit")
    wanted = parse_count(given, "limit param") if given is not None else limits.limit_param_default
    limit = min(wanted, limits.api_limit_max)
    found = await run_in_threadpool(
        _imports(request).list_tasks, deps.context(request), q.get("status"), q.get("type"), limit
    )
    return JSONResponse({"tasks": [task_view(t) for t in found], "first": "/v2/tasks", "schema": "/v2/schemas/tasks"})


async def create(request: Request) -> Response:
    body = await deps.json_body(request)
    task = await run_in_threadpool(
        create_import_task, deps.images(request), _imports(request), deps.context(request), body
    )
    return JSONResponse(task_view(task), status_code=201)


async def show(request: Request) -> Response:
    task = await run_in_threadpool(_imports(request).get_task, deps.context(request), request.path_params["task_id"])
    return JSONResponse(task_view(task))


routes = [
    resource("/v2/images/{image_id}/stage", put=stage),
    resource("/v2/images/{image_id}/import", post=start),
    resource("/v2/images/{image_id}/tasks", get=image_tasks),
    resource("/v2/tasks", get=index, post=create),
    resource("/v2/tasks/{task_id}", get=show),
]
