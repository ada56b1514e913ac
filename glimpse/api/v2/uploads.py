"""Resumable uploads over tus 1.0: /v2/images/{image_id}/uploads[/{upload_id}] (glimpse/tus.py reads the protocol,
glimpse/domain/resumable.py keeps its rules; this is only the HTTP around them)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from glimpse import tus
from glimpse.api import deps
from glimpse.api.errors import error_response, status_for
from glimpse.domain.resumable import ResumableUploads
from glimpse.errors import GlimpseError
from glimpse.tus_web import created_headers, route, state, until_disconnect

_UPLOAD_PATH = re.compile(r"/v2/images/(?P<image>[^/]+)/uploads/(?P<upload>[0-9a-f-]{36})$")


def service(request: Request) -> ResumableUploads:
    value: ResumableUploads = request.app.state.resumable
    return value


def upload_url(request: Request, image_id: str, upload_id: str) -> str:
    return f"{str(request.base_url).rstrip('/')}/v2/images/{image_id}/uploads/{upload_id}"


def repr_digest(request: Request) -> str:
    """The Repr-Digest field (RFC 9530) of the whole image, its lines joined, as the client sent it."""
    return ", ".join(request.headers.getlist("repr-digest"))


def tus_errors(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Every answer, errors too, says Tus-Resumable (clients check it), in Glance's error format."""

    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except GlimpseError as exc:
            return error_response(request, status_for(exc), exc.message, tus.common_headers())

    return answer


@tus_errors
async def discover(request: Request) -> Response:
    ctx, image_id = deps.context(request), request.path_params["image_id"]
    max_size = await run_in_threadpool(service(request).max_size, ctx, image_id)
    return Response(status_code=204, headers=tus.discovery_headers(max_size))


@tus_errors
async def create(request: Request) -> Response:
    image_id = request.path_params["image_id"]

    def upload_id_of(url: str) -> str | None:
        match = _UPLOAD_PATH.search(urlsplit(url).path)
        return match["upload"] if match and match["image"] == image_id else None

    creation = tus.parse_creation(request.headers, upload_id_of)
    # A final concatenation joins and reads back its parts before it answers: a transfer thread, not a metadata one.
    upload = await deps.transfers(request).run(
        service(request).create,
        deps.context(request),
        image_id,
        creation.length,
        creation.concat,
        creation.metadata,
        request.headers.get("x-image-meta-store"),
        repr_digest(request),
    )
    return Response(status_code=201, headers=created_headers(upload_url(request, image_id, upload.id), upload))


@tus_errors
async def head(request: Request) -> Response:
    tus.check_version(request.headers)
    image_id = request.path_params["image_id"]
    upload = await run_in_threadpool(
        service(request).get, deps.context(request), image_id, request.path_params["upload_id"]
    )
    headers = tus.state_headers(state(upload), lambda part: upload_url(request, image_id, part))
    return Response(status_code=200, headers=headers)


@tus_errors
async def patch(request: Request) -> Response:
    chunk = tus.parse_chunk(request.headers)
    transfers = deps.transfers(request)
    upload = await transfers.run(
        service(request).append,
        deps.context(request),
        request.path_params["image_id"],
        request.path_params["upload_id"],
        chunk.offset,
        chunk.checksum,
        transfers.reader(until_disconnect(request.stream())),
        repr_digest(request),
    )
    return Response(status_code=204, headers=tus.progress_headers(state(upload)))


@tus_errors
async def terminate(request: Request) -> Response:
    tus.check_version(request.headers)
    await deps.transfers(request).run(
        service(request).terminate,
        deps.context(request),
        request.path_params["image_id"],
        request.path_params["upload_id"],
    )
    return Response(status_code=204, headers=tus.common_headers())


routes = [
    route("/v2/images/{image_id}/uploads", options=discover, post=create),
    route("/v2/images/{image_id}/uploads/{upload_id}", head=head, patch=patch, delete=terminate),
]
