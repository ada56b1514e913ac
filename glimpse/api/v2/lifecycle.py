"""The recycle bin (/v2/recycle-bin) and image families (/v2/families): Glimpse's own, in Glance's error format."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.api import deps
from glimpse.api.routing import resource
from glimpse.api.v2.images import image_document
from glimpse.api.v2.views import isotime
from glimpse.domain.entities import BinnedImage
from glimpse.domain.families import Families
from glimpse.domain.recycle_bin import RecycleBin


def _bin(request: Request) -> RecycleBin:
    service: RecycleBin = request.app.state.bin
    return service


def _families(request: Request) -> Families:
    service: Families = request.app.state.families
    return service


def _binned_view(request: Request, binned: BinnedImage) -> dict[str, Any]:
    doc = image_document(request, binned.image)
    doc.update(
        deleted_at=isotime(binned.deleted_at),
        expires_at=isotime(binned.expires_at),
        restores_to=binned.former_status,
        self=f"/v2/recycle-bin/{binned.image.id}",
    )
    return doc


async def bin_index(request: Request) -> Response:
    params = {key: request.query_params.getlist(key) for key in request.query_params}
    found, more = await run_in_threadpool(_bin(request).list, deps.context(request), params)
    body: dict[str, Any] = {"images": [_binned_view(request, b) for b in found], "first": "/v2/recycle-bin"}
    if more and found:
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
        body["next"] = "/v2/recycle-bin?" + urlencode([*query, ("marker", found[-1].image.id)])
    return JSONResponse(body)


async def bin_show(request: Request) -> Response:
    found = await run_in_threadpool(_bin(request).get, deps.context(request), request.path_params["image_id"])
    return JSONResponse(_binned_view(request, found))


async def bin_restore(request: Request) -> Response:
    image = await run_in_threadpool(_bin(request).restore, deps.context(request), request.path_params["image_id"])
    shown = await run_in_threadpool(deps.images(request).get, deps.context(request), image.id)
    return JSONResponse(image_document(request, shown))


async def bin_purge(request: Request) -> Response:
    done = await run_in_threadpool(_bin(request).purge, deps.context(request), request.path_params["image_id"])
    # 202: out of the bin for good, its data left for the next `glimpse scrub` (a store failed meanwhile).
    return Response(status_code=204 if done else 202)


async def retention_index(request: Request) -> Response:
    found = await run_in_threadpool(_bin(request).all_retention, deps.context(request))
    return JSONResponse({"retention": [{"project_id": p, "retention_period": s} for p, s in found.items()]})


async def retention_show(request: Request) -> Response:
    found = await run_in_threadpool(_bin(request).retention, deps.context(request), request.path_params["project_id"])
    return JSONResponse(found)


async def retention_update(request: Request) -> Response:
    body = await deps.json_body(request)
    project = request.path_params["project_id"]
    found = await run_in_threadpool(_bin(request).set_retention, deps.context(request), project, body)
    return JSONResponse(found)


async def retention_delete(request: Request) -> Response:
    project = request.path_params["project_id"]
    body = {"retention_period": None}
    await run_in_threadpool(_bin(request).set_retention, deps.context(request), project, body)
    return Response(status_code=204)


async def family_index(request: Request) -> Response:
    marker = request.query_params.get("marker")
    limit_text = request.query_params.get("limit")
    limit = deps.page_limit(limit_text) if limit_text is not None else None
    found = await run_in_threadpool(_families(request).list, deps.context(request), marker, limit)
    families = [
        {"name": f.name, "latest": image_document(request, f.latest) if f.latest is not None else None} for f in found
    ]
    body: dict[str, Any] = {"families": families, "first": "/v2/families"}
    if found and len(found) == (limit or deps.settings(request).limit_param_default):
        body["next"] = "/v2/families?" + urlencode({"marker": found[-1].name, **({"limit": limit} if limit else {})})
    return JSONResponse(body)


async def family_latest(request: Request) -> Response:
    image = await run_in_threadpool(_families(request).latest, deps.context(request), request.path_params["family"])
    return JSONResponse(image_document(request, image))


routes = [
    resource("/v2/recycle-bin", get=bin_index),
    resource("/v2/recycle-bin/retention", get=retention_index),
    resource(
        "/v2/recycle-bin/retention/{project_id}", get=retention_show, put=retention_update, delete=retention_delete
    ),
    resource("/v2/recycle-bin/{image_id}", get=bin_show, delete=bin_purge),
    resource("/v2/recycle-bin/{image_id}/restore", post=bin_restore),
    resource("/v2/families", get=family_index),
    resource("/v2/families/{family}/latest", get=family_latest),
]
