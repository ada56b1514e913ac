"""The one table from domain errors to HTTP, and Glance's error body format.

Glance's errors are WebOb's: text/plain "<status>\\n\\n<explanation>\\n\\n <detail>", or a JSON object
{"message", "code", "title"} when the client asks for JSON. The real clients parse both.
"""
from __future__ import annotations

import json
import logging
from http import HTTPStatus

from starlette.requests import Request
from starlette.responses import Response

from glimpse.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    GlimpseError,
    Gone,
    NotFound,
    RangeNotSatisfiable,
    StoreUnavailable,
    TooLarge,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

HTTP_STATUS: dict[type[GlimpseError], int] = {
    BadRequest: 400,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    TooLarge: 413,
    UnsupportedMediaType: 415,
    RangeNotSatisfiable: 416,
    StoreUnavailable: 503,
    GlimpseError: 500,
}

# WebOb's standard explanation line for each status, which Glance's bodies start with.
EXPLANATIONS = {
    400: "The server could not comply with the request since it is either malformed or otherwise incorrect.",
    401: "This server could not verify that you are authorized to access the document you requested.",
    403: "Access was denied to this resource.",
    404: "The resource could not be found.",
    405: "The method specified is not allowed for this resource.",
    409: "There was a conflict when trying to complete your request.",
    410: "This resource is no longer available.  No forwarding address is given.",
    413: "The request is larger than the server is willing or able to process.",
    415: "The request media type is not supported by this server.",
    416: "The Range requested is not available.",
    500: "The server has either erred or is incapable of performing the requested operation.",
    503: "The server is currently unavailable. Please try again at a later time.",
}


def _wants_json(request: Request | None) -> bool:
    accept = request.headers.get("accept", "") if request is not None else ""
    return "application/json" in accept and "text/html" not in accept


def error_response(
    request: Request | None, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    phrase = HTTPStatus(status).phrase
    title = f"{status} {phrase}"
    if _wants_json(request):
        body = json.dumps({"message": message, "code": title, "title": phrase})
        return Response(body, status, headers=headers, media_type="application/json")
    text = f"{title}\n\n{EXPLANATIONS.get(status, phrase)}\n\n {message}  "
    return Response(text, status, headers=headers, media_type="text/plain")


def status_for(exc: GlimpseError) -> int:
    return next(HTTP_STATUS[c] for c in type(exc).__mro__ if c in HTTP_STATUS)


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GlimpseError)
    status = status_for(exc)
    if status >= 500:
        log.error("Request %s failed: %s", request.url.path, exc.message)
    headers = {}
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    return error_response(request, status, exc.message, headers)
