"""The dashboard's resumable uploads: tus 1.0 at /dashboard/images/{image_id}/uploads[/{upload_id}], for the
Create Image page's tus-js-client. The same protocol (glimpse.tus) and the same domain rules as the API's
/v2/images/{image_id}/uploads; the caller is the session's user, and every request, HEAD included, carries the
session's CSRF token in X-CSRF-Token (tus-js-client sends its `headers` on each one)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse import tus
from glimpse.dashboard.i18n import N_, Speech
from glimpse.dashboard.messages import SESSION_ENDED, Missing, message_for
from glimpse.dashboard.web import BASE, Page
from glimpse.domain.data_meter import counted
from glimpse.domain.resumable import ResumableUploads
from glimpse.errors import GlimpseError, status_for
from glimpse.tus_web import created_headers, route, state, until_disconnect

_UPLOAD_PATH = re.compile(rf"{BASE}/images/(?P<image>[^/]+)/uploads/(?P<upload>[0-9a-f-]{{36}})$")


def _location(request: Request, image_id: str, upload_id: str) -> str:
    return f"{str(request.base_url).rstrip('/')}{BASE}/images/{image_id}/uploads/{upload_id}"


class _Caller:
    """The session's page and the uploads service; 401 without a session, 403 without the CSRF token."""

    def __init__(self, page: Page) -> None:
        self.page = page
        if self.page.identity is None:
            raise _SessionEnded
        self.page.check_csrf_header()
        service = self.page.dash.resumable
        if service is None:
            raise Missing(N_("Resumable uploads are not available here."))
        self.uploads: ResumableUploads = service


class _SessionEnded(Exception):
    pass


def _answers(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Every answer says Tus-Resumable (tus-js-client checks it); errors in the dashboard's JSON shape."""

    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except _SessionEnded:
            message, status = Speech.of(request).gettext(SESSION_ENDED), 401
        except GlimpseError as exc:
            message, status = message_for(exc, Speech.of(request).gettext), status_for(exc)
        body = None if request.method == "HEAD" else {"error": message}
        return JSONResponse(body, status_code=status, headers=tus.common_headers())

    return answer


@_answers
async def discover(request: Request) -> Response:
    caller = _Caller(await Page.open(request))
    max_size = await caller.page.call(caller.uploads.max_size, request.path_params["image_id"])
    return Response(status_code=204, headers=tus.discovery_headers(max_size))


@_answers
async def create(request: Request) -> Response:
    caller = _Caller(await Page.open(request))
    image_id = request.path_params["image_id"]

    def upload_id_of(url: str) -> str | None:
        match = _UPLOAD_PATH.search(urlsplit(url).path)
        return match["upload"] if match and match["image"] == image_id else None

    creation = tus.parse_creation(request.headers, upload_id_of)
    upload = await caller.page.transfer(
        caller.uploads.create, image_id, creation.length, creation.concat, creation.metadata
    )
    return Response(status_code=201, headers=created_headers(_location(request, image_id, upload.id), upload))


@_answers
async def head(request: Request) -> Response:
    tus.check_version(request.headers)
    caller = _Caller(await Page.open(request))
    image_id = request.path_params["image_id"]
    upload = await caller.page.call(caller.uploads.get, image_id, request.path_params["upload_id"])
    return Response(
        status_code=200, headers=tus.state_headers(state(upload), lambda p: _location(request, image_id, p))
    )


@_answers
async def patch(request: Request) -> Response:
    chunk = tus.parse_chunk(request.headers)
    caller = _Caller(await Page.open(request))
    dash = caller.page.dash
    body = counted(dash.transfers.reader(until_disconnect(request.stream())), dash.meter, "dashboard")
    upload = await caller.page.transfer(
        caller.uploads.append,
        request.path_params["image_id"],
        request.path_params["upload_id"],
        chunk.offset,
        chunk.checksum,
        body,
    )
    return Response(status_code=204, headers=tus.progress_headers(state(upload)))


@_answers
async def terminate(request: Request) -> Response:
    tus.check_version(request.headers)
    caller = _Caller(await Page.open(request))
    await caller.page.transfer(
        caller.uploads.terminate, request.path_params["image_id"], request.path_params["upload_id"]
    )
    return Response(status_code=204, headers=tus.common_headers())


routes = [
    route("/images/{image_id}/uploads", options=discover, post=create),
    route("/images/{image_id}/uploads/{upload_id}", head=head, patch=patch, delete=terminate),
]
