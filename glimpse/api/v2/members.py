"""Image members: /v2/images/{id}/members[/{member_id}]."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.api import deps
from glimpse.api.routing import resource
from glimpse.api.v2.views import member_view
from glimpse.domain.members import MemberService


def _members(request: Request) -> MemberService:
    service: MemberService = request.app.state.members
    return service


async def index(request: Request) -> Response:
    found = await run_in_threadpool(_members(request).list, deps.context(request), request.path_params["image_id"])
    return JSONResponse({"members": [member_view(m) for m in found], "schema": "/v2/schemas/members"})


async def create(request: Request) -> Response:
    body = await deps.json_body(request)
    member = await run_in_threadpool(
        _members(request).add, deps.context(request), request.path_params["image_id"], body
    )
    return JSONResponse(member_view(member))


async def show(request: Request) -> Response:
    p = request.path_params
    member = await run_in_threadpool(_members(request).get, deps.context(request), p["image_id"], p["member_id"])
    return JSONResponse(member_view(member))


async def update(request: Request) -> Response:
    body = await deps.json_body(request)
    p = request.path_params
    member = await run_in_threadpool(
        _members(request).set_status, deps.context(request), p["image_id"], p["member_id"], body
    )
    return JSONResponse(member_view(member))


async def delete(request: Request) -> Response:
    p = request.path_params
    await run_in_threadpool(_members(request).delete, deps.context(request), p["image_id"], p["member_id"])
    return Response(status_code=204)


routes = [
    resource("/v2/images/{image_id}/members", get=index, post=create),
    resource("/v2/images/{image_id}/members/{member_id}", get=show, put=update, delete=delete),
]
