"""POST /dashboard/probe: the disk format of the file the Create Image page is about to send, from its first
bytes (the body, at most HEAD_BYTES) and its name (?filename=), by the same inspector that checks uploads."""

from __future__ import annotations

from dataclasses import asdict

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.dashboard.messages import SESSION_ENDED, message_for
from glimpse.dashboard.web import Page
from glimpse.errors import GlimpseError, status_for
from glimpse.formats.detection import HEAD_BYTES, guess_formats


async def _head(request: Request) -> bytes | None:
    """The body, or None once it is longer than HEAD_BYTES (nothing more is read)."""
    head = bytearray()
    async for chunk in request.stream():
        head += chunk
        if len(head) > HEAD_BYTES:
            return None
    return bytes(head)


async def probe(request: Request) -> Response:
    page = await Page.open(request)
    if page.identity is None:
        return JSONResponse({"error": page._(SESSION_ENDED)}, status_code=401)
    try:
        page.check_csrf_header()
    except GlimpseError as exc:
        return JSONResponse({"error": message_for(exc, page._)}, status_code=status_for(exc))
    head = await _head(request)
    if head is None:
        return JSONResponse(
            {"error": page._("Send at most the file's first %(most)s bytes.", most=HEAD_BYTES)}, status_code=413
        )
    guess = await run_in_threadpool(guess_formats, head, request.query_params.get("filename", ""))
    return JSONResponse(asdict(guess))
