"""The web side of tus uploads that the API (/v2/images/{id}/uploads) and the dashboard
(/dashboard/images/{id}/uploads) share: an upload as the protocol shows it, a chunk's body that ends where the
client went away, and routes that answer exactly tus's methods. glimpse.tus reads and writes the headers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from glimpse import tus
from glimpse.domain.entities import ResumableUpload
from glimpse.domain.resumable import FINAL, PARTIAL


def state(upload: ResumableUpload) -> tus.UploadState:
    return tus.UploadState(
        upload_id=upload.id,
        offset=upload.offset,
        length=upload.length,
        expires_at=upload.expires_at,
        partial=upload.kind == PARTIAL,
        final_of=upload.parts if upload.kind == FINAL else (),
        metadata=upload.metadata,
    )


def created_headers(location: str, upload: ResumableUpload) -> dict[str, str]:
    """POST's answer: where the upload is, until when it waits, and how far it got."""
    return {
        **tus.common_headers(),
        "Location": location,
        "Upload-Expires": tus.http_date(upload.expires_at),
        "Upload-Offset": str(upload.offset),
    }


async def until_disconnect(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The body, ending where the client went away: what arrived counts (resuming goes on from there)."""
    try:
        async for chunk in stream:
            yield chunk
    except ClientDisconnect:
        return


def route(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> Route:
    """A route whose methods are exactly these (HEAD here is tus's own, not GET's twin): 405 for any other."""
    by_method = {method.upper(): handler for method, handler in handlers.items()}

    async def dispatch(request: Request) -> Response:
        return await by_method[request.method](request)

    return Route(path, dispatch, methods=list(by_method))
