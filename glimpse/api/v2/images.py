"""Image metadata endpoints: create, list, show, update (JSON-patch), delete, actions and tags."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.api import deps
from glimpse.api.documents import DocumentResponse
from glimpse.api.errors import error_response
from glimpse.api.routing import resource
from glimpse.api.v2.views import image_view
from glimpse.domain.entities import Image
from glimpse.domain.patch import MEDIA_TYPES


def image_document(request: Request, image: Image) -> dict[str, Any]:
    """An image as GET /v2/images/{id} shows it (the recycle bin and families show theirs the same way)."""
    return image_documents(request, [image])[0]


def image_documents(request: Request, images: list[Image]) -> list[dict[str, Any]]:
    """Images as image_document shows each; what the request decides for all of them is looked up once."""
    s = deps.settings(request)
    service = deps.images(request)
    multi = service.stores.multi
    # Deduplicated data is named after the image that stored it first: its URL would tell a project that another
    # image (maybe another project's) holds the same data. Only admins see locations then (docs/deduplication.md).
    shown = not s.deduplicate_image_data or deps.context(request).is_admin
    direct_url, locations = s.show_image_direct_url and shown, s.show_multiple_locations and shown
    return [
        image_view(
            image,
            direct_url=direct_url,
            locations=locations,
            stores=service.store_ids(image) if multi else None,
        )
        for image in images
    ]


async def create(request: Request) -> Response:
    body = await deps.json_body(request)
    image = await deps.write(request, deps.images(request).create, deps.context(request), body)
    headers = {"Location": f"{request.base_url}v2/images/{image.id}".replace("//v2", "/v2")}
    methods = request.app.state.import_methods
    if methods:
        headers["OpenStack-image-import-methods"] = ",".join(methods)
    registry = deps.images(request).stores
    if registry.multi:
        headers["OpenStack-image-store-ids"] = ",".join(registry.writable_ids())
    return DocumentResponse(image_document(request, image), status_code=201, headers=headers)


async def index(request: Request) -> Response:
    params = {key: request.query_params.getlist(key) for key in request.query_params}
    found, more = await deps.read(request, deps.images(request).list, deps.context(request), params)
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    body: dict[str, Any] = {
        "images": image_documents(request, found),
        "first": "/v2/images" + (f"?{urlencode(query)}" if query else ""),
        "schema": "/v2/schemas/images",
    }
    if more and found:
        body["next"] = "/v2/images?" + urlencode([*query, ("marker", found[-1].id)])
    return DocumentResponse(body)


async def show(request: Request) -> Response:
    image = await deps.read(request, deps.images(request).get, deps.context(request), request.path_params["image_id"])
    return DocumentResponse(image_document(request, image))


async def update(request: Request) -> Response:
    media = deps.media_type(request)
    if media not in MEDIA_TYPES:
        return error_response(
            request,
            415,
            f"Unsupported Content-Type: {media or 'none'}; use one of {', '.join(MEDIA_TYPES)}.",
            headers={"Accept-Patch": ", ".join(MEDIA_TYPES)},
        )
    body = await deps.json_body(request, MEDIA_TYPES)
    image = await run_in_threadpool(
        deps.images(request).update, deps.context(request), request.path_params["image_id"], body, media
    )
    return DocumentResponse(image_document(request, image))


async def delete(request: Request) -> Response:
    await run_in_threadpool(deps.images(request).delete, deps.context(request), request.path_params["image_id"])
    return Response(status_code=204)


async def deactivate(request: Request) -> Response:
    await run_in_threadpool(deps.images(request).deactivate, deps.context(request), request.path_params["image_id"])
    return Response(status_code=204)


async def reactivate(request: Request) -> Response:
    await run_in_threadpool(deps.images(request).reactivate, deps.context(request), request.path_params["image_id"])
    return Response(status_code=204)


async def add_tag(request: Request) -> Response:
    p = request.path_params
    await run_in_threadpool(deps.images(request).add_tag, deps.context(request), p["image_id"], p["tag"])
    return Response(status_code=204)


async def delete_tag(request: Request) -> Response:
    p = request.path_params
    await run_in_threadpool(deps.images(request).remove_tag, deps.context(request), p["image_id"], p["tag"])
    return Response(status_code=204)


async def list_locations(request: Request) -> Response:
    found = await run_in_threadpool(
        deps.images(request).locations, deps.context(request), request.path_params["image_id"]
    )
    return JSONResponse([{"url": loc.url, "metadata": loc.metadata} for loc in found])


async def add_location(request: Request) -> Response:
    body = await deps.json_body(request)
    await run_in_threadpool(
        deps.images(request).add_location, deps.context(request), request.path_params["image_id"], body
    )
    return Response(status_code=202)


async def delete_from_store(request: Request) -> Response:
    p = request.path_params
    await run_in_threadpool(deps.images(request).delete_from_store, deps.context(request), p["store_id"], p["image_id"])
    return Response(status_code=204)


routes = [
    resource("/v2/images", get=index, post=create),
    resource("/v2/images/{image_id}", get=show, patch=update, delete=delete),
    resource("/v2/images/{image_id}/actions/deactivate", post=deactivate),
    resource("/v2/images/{image_id}/actions/reactivate", post=reactivate),
    resource("/v2/images/{image_id}/tags/{tag:path}", put=add_tag, delete=delete_tag),
    resource("/v2/images/{image_id}/locations", post=add_location, get=list_locations),
    resource("/v2/stores/{store_id}/{image_id}", delete=delete_from_store),
]
