"""Bounds on every request dimension that arrives before a handler runs: headers, URL, query, body.

Each refusal is a 4xx in Glance's error format. A body is counted while it streams: a request that
announces too large a Content-Length is refused before any of it is read, and one that sends more
than its cap is cut off at the cap (TooLarge raised from receive(), which the handler's read meets).
Image data (upload, stage) has no cap here: image_size_cap and the quotas meter it as it streams.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glimpse.api.errors import error_response, status_for
from glimpse.config import Settings
from glimpse.errors import BadRequest, GlimpseError, HeadersTooLarge, TooLarge, UriTooLong

# PUTs whose body is image data, streamed into a store under image_size_cap and the quotas.
DATA_PATHS = re.compile(r"^(/v2/images/[^/]+/(file|stage)|/dashboard/images/[^/]+/file)$")
# PATCHes of a resumable (tus) upload, each bounded by the upload's Upload-Length.
CHUNK_PATHS = re.compile(r"^(/v2/images/[^/]+/uploads/[^/]+|/dashboard/images/[^/]+/uploads/[^/]+)$")
# Identity headers of the no-auth mode, kept in columns of 255 characters (owner, user_id).
IDENTITY_HEADERS = (b"x-project-id", b"x-tenant-id", b"x-user-id")
# The dashboard's create form may carry the image file itself (browsers without the upload script).
FORM_UPLOAD_PATH = "/dashboard/images/new"


@dataclass(frozen=True)
class RequestLimits:
    max_body: int = 114688  # [oslo_middleware] max_request_body_size
    max_form_upload: int = 1024**4  # image_size_cap (+ max_body for the form's other fields)
    max_header_line: int = 16384  # one header line, and the request URL
    max_headers: int = 100
    max_query_params: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> RequestLimits:
        return cls(
            max_body=settings.max_request_body_size,
            max_form_upload=settings.image_size_cap + settings.max_request_body_size,
            max_header_line=settings.max_header_line,
        )

    def body_cap(self, scope: Scope) -> int | None:
        """The most body bytes this request may send; None for image data."""
        path, method = scope["path"], scope["method"]
        if (method == "PUT" and DATA_PATHS.match(path)) or (method == "PATCH" and CHUNK_PATHS.match(path)):
            return None
        if method == "POST" and path == FORM_UPLOAD_PATH and _header(scope, b"content-type").startswith(b"multipart/"):
            return self.max_form_upload
        return self.max_body


def _header(scope: Scope, name: bytes) -> bytes:
    return next((v for k, v in scope["headers"] if k == name), b"").lower()


def check_head(scope: Scope, limits: RequestLimits) -> None:
    """Headers, URL and query string; raises the GlimpseError that refuses the request."""
    headers = scope["headers"]
    if len(headers) > limits.max_headers:
        raise HeadersTooLarge(f"The request has {len(headers)} headers; at most {limits.max_headers} are read.")
    for name, value in headers:
        if len(name) + len(value) + 2 > limits.max_header_line:
            raise HeadersTooLarge(
                f"Header {name[:64].decode('latin-1')} is longer than {limits.max_header_line} bytes."
            )
        if name in IDENTITY_HEADERS and len(value) > 255:
            raise BadRequest(f"Header {name.decode()} is longer than 255 bytes.")
    query: bytes = scope.get("query_string", b"")
    if len(scope.get("raw_path") or scope["path"].encode()) + len(query) > limits.max_header_line:
        raise UriTooLong(f"The request URL is longer than {limits.max_header_line} bytes.")
    if "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(query):
        raise BadRequest("The request URL contains a NUL character.")
    if sum(1 for part in query.split(b"&") if part) > limits.max_query_params:
        raise BadRequest(f"The query string has more than {limits.max_query_params} parameters.")


class CappedBody:
    """receive() that raises TooLarge once more than `cap` body bytes have arrived, and send() that then
    closes the connection after the answer, so the rest of the body is never read."""

    def __init__(self, receive: Receive, send: Send, cap: int) -> None:
        self._receive = receive
        self._send = send
        self.cap = cap
        self.seen = 0

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.cap:
                raise TooLarge(f"The request body is larger than {self.cap} bytes (max_request_body_size).")
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and self.seen > self.cap:
            message["headers"] = [*message.get("headers", []), (b"connection", b"close")]
        await self._send(message)


class RequestLimitsMiddleware:
    def __init__(self, app: ASGIApp, limits: RequestLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.limits.body_cap(scope)
        try:
            check_head(scope, self.limits)
            length = _header(scope, b"content-length")
            if cap is not None and length.isdigit() and len(length) < 20 and int(length) > cap:
                raise TooLarge(f"The request body is larger than {cap} bytes (max_request_body_size).")
        except GlimpseError as exc:
            response = error_response(Request(scope), status_for(exc), exc.message, {"Connection": "close"})
            await response(scope, receive, send)
            return
        if cap is None:
            await self.app(scope, receive, send)
            return
        body = CappedBody(receive, send, cap)
        await self.app(scope, body.receive, body.send)
