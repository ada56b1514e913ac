"""The images page (table, filters, search, sort, pages, usage) and the Create Image form with its upload."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from glimpse.dashboard import forms
from glimpse.dashboard.messages import IMPORT_STARTED, SESSION_ENDED, message_for, refusal
from glimpse.dashboard.multipart import StreamedForm
from glimpse.dashboard.row_actions import can_create, row_actions
from glimpse.dashboard.search import PAGE_SIZES, ListRequest, search
from glimpse.dashboard.web import BASE, Page
from glimpse.domain.authorization import new_image_target
from glimpse.domain.entities import Image
from glimpse.domain.image import CONTAINER_FORMATS, DISK_FORMATS, VISIBILITIES
from glimpse.errors import GlimpseError, status_for
from glimpse.formats.detection import HEAD_BYTES

# Bytes per request of the page's resumable upload: what a reload or a dropped connection may have to send again
# at most, and small enough for the proxies a dashboard often sits behind.
UPLOAD_CHUNK_SIZE = 8 * 1024 * 1024
LISTED_STATUSES = ("queued", "saving", "importing", "active", "deactivated", "killed")  # the status filter's


async def index(request: Request) -> Response:
    page = await Page.open(request)
    wanted = ListRequest.from_query(request.query_params, page.ctx)
    found: list[Image] = []
    next_marker, truncated, error = None, False, None
    try:
        found, next_marker, truncated = await page.call(search, page.dash.images, wanted)
    except GlimpseError as exc:
        error = message_for(exc, page._)
    rows, may_create = await page.checked(lambda: (row_actions(page, found), can_create(page)))
    usage: dict[str, Any] | None = None
    usage_error = None
    try:
        usage = await page.call(page.dash.quotas.usage)
    except GlimpseError as exc:
        usage_error = message_for(exc, page._)
    return await page.render(
        "images.html",
        rows=rows,
        can_create=may_create,
        wanted=wanted,
        this_url=wanted.url(),
        next_url=wanted.next_url(next_marker) if next_marker else None,
        previous_url=wanted.previous_url(),
        first_url=wanted.first_url() if wanted.back else None,
        truncated=truncated,
        list_error=error,
        usage=usage,
        usage_error=usage_error,
        statuses=LISTED_STATUSES,
        status_words={status: page.speech.status(status) for status in LISTED_STATUSES},
        visibilities=VISIBILITIES,
        disk_formats=DISK_FORMATS,
        container_formats=CONTAINER_FORMATS,
        page_sizes=PAGE_SIZES,
    )


async def _form_page(page: Page, values: dict[str, Any], error: str | None = None) -> Response:
    return await page.render(
        "create.html",
        status_code=400 if error else 200,
        values=values,
        form_error=error,
        disk_formats=DISK_FORMATS,
        container_formats=CONTAINER_FORMATS,
        visibilities=VISIBILITIES,
        web_download=page.dash.web_download,
        upload_chunk_size=UPLOAD_CHUNK_SIZE,
        probe_bytes=HEAD_BYTES,
    )


async def new(request: Request) -> Response:
    """The form, or for a caller whose role may not create images (a reader) a page that says so. The disk
    format is left to choose: the page's script fills it in from the file chosen."""
    page = await Page.open(request)
    ctx = page.ctx
    if not await page.checked(page.dash.policy.check, ctx, "add_image", new_image_target(ctx.project_id, "shared")):
        return await page.render("create.html", status_code=403, refused=refusal("add_image", page._))
    return await _form_page(page, {"visibility": "shared", "container_format": "bare"})


def _upload_refused(page: Page, image: Image, reason: str) -> str:
    return page._(
        "Image “%(name)s” was created but its data was refused: %(reason)s", name=image.name or image.id, reason=reason
    )


async def create(request: Request) -> Response:
    """Create the image; the script then PUTs the file. Without the script the file comes last in the form,
    streamed into the upload once the fields before it have created the image."""
    page = await Page.open(request)
    page.require_login()
    streamed: StreamedForm | None = None
    form: Mapping[str, Any]
    if request.headers.get("content-type", "").startswith("multipart/"):
        streamed = await page.streamed_form()
        form = streamed.fields
    else:
        form = await page.form()
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        image = await page.call(page.dash.images.create, forms.create_body(form))
    except GlimpseError as exc:
        if wants_json:
            return JSONResponse({"error": message_for(exc, page._)}, status_code=status_for(exc))
        return await _form_page(page, {k: v for k, v in form.items() if isinstance(v, str)}, message_for(exc, page._))
    detail = f"{BASE}/images/{image.id}"
    if wants_json:
        body = {
            "id": image.id,
            "name": image.name,
            "detail": detail,
            "upload": f"{detail}/file",
            "uploads": f"{detail}/uploads",
        }
        return JSONResponse(body, status_code=201)
    url = form.get("url")
    if isinstance(url, str) and url.strip() and page.dash.imports is not None:
        try:
            await page.call(page.dash.imports.start, image.id, {"method": {"name": "web-download", "uri": url.strip()}})
        except GlimpseError as exc:
            return await page.redirect(
                detail,
                page._("The image was created but its import was refused: %(reason)s", reason=message_for(exc, page._)),
                error=True,
            )
        return await page.redirect(detail, page._(IMPORT_STARTED))
    if streamed is None or not streamed.filename:
        return await page.redirect(
            detail, page._("Image created without data; it stays queued until data is uploaded.")
        )
    try:
        await page.upload(image.id, streamed.file_chunks(), None)
    except ClientDisconnect:
        return Response(status_code=400)  # cancelled: the image is back in queued
    except GlimpseError as exc:
        return await page.redirect(
            f"{detail}#upload", _upload_refused(page, image, message_for(exc, page._)), error=True
        )
    return await page.redirect(detail, page._("Image created and uploaded."))


async def upload(request: Request) -> Response:
    """The body streams straight into ImageService.upload; the session's CSRF token comes as a header."""
    page = await Page.open(request)
    if page.identity is None:
        return JSONResponse({"error": page._(SESSION_ENDED)}, status_code=401)
    image_id = request.path_params["image_id"]
    length = request.headers.get("content-length")
    try:
        page.check_csrf_header()
        await page.upload(image_id, request.stream(), int(length) if length else None)
    except ClientDisconnect:
        return Response(status_code=400)  # cancelled: the image is back in queued
    except GlimpseError as exc:
        return JSONResponse({"error": message_for(exc, page._)}, status_code=status_for(exc))
    return JSONResponse({"detail": f"{BASE}/images/{image_id}"})
