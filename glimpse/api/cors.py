"""CORS as Glance serves it: oslo.middleware's CORS filter rules, with the [cors] options and Glance's defaults.

Glance puts that filter first in its pipeline, before authentication, so that a browser's preflight is answered
without a token (Horizon's direct upload sends the image from the browser to the image API). oslo.middleware's
filter is WSGI; the rules are small, so they are kept here as ASGI middleware rather than running a streaming
ASGI app (multi-GB uploads) behind a WSGI adapter. What it does, as oslo.middleware does:

- every OPTIONS request is answered 200 with an empty body (Glance's API answers none itself, and the filter
  replaces any non-2xx answer); a preflight from an allowed origin, asking for an allowed method and only
  allowed or simple headers, gets Access-Control-Allow-Origin/-Credentials/-Max-Age/-Methods/-Headers;
- but a tus client's OPTIONS (no preflight: no Access-Control-Request-Method) on /v2/images/{id}/uploads goes to
  the API, which answers tus's discovery; on those paths the tus headers are allowed and exposed besides [cors]'s,
  so a browser's tus client (tus-js-client) on an allowed origin can speak the protocol;
- any other request from an allowed origin gets Access-Control-Allow-Origin, -Credentials and -Expose-Headers
  (and Vary: Origin) on its response, whatever its status; a request from any other origin gets nothing.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glimpse import tus
from glimpse.config import Settings

TUS_PATHS = re.compile(r"^/v2/images/[^/]+/uploads(/[^/]+)?$")
TUS_REQUEST_HEADERS = ("Tus-Resumable", "Upload-Length", "Upload-Offset", "Upload-Metadata", "Upload-Checksum",
                       "Upload-Concat", "Upload-Defer-Length", "X-Image-Meta-Store", "Repr-Digest")  # fmt: skip

# oslo.middleware's "simple headers": always allowed in a preflight's Access-Control-Request-Headers.
SIMPLE_HEADERS = frozenset(
    {"accept", "accept-language", "content-type", "cache-control", "content-language", "expires", "last-modified",
     "pragma"}
)  # fmt: skip


@dataclass(frozen=True)
class CorsRules:
    allowed_origins: tuple[str, ...] = ()
    allow_credentials: bool = True
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = 3600
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> CorsRules:
        c = settings.cors

        def items(key: str) -> tuple[str, ...]:
            value = c.get(key) or ()
            return tuple(str(v).strip() for v in value if str(v).strip())  # type: ignore[attr-defined]

        max_age = c.get("max_age", 3600)
        return cls(
            allowed_origins=items("allowed_origin"),
            allow_credentials=bool(c.get("allow_credentials", True)),
            expose_headers=items("expose_headers"),
            max_age=int(max_age) if max_age is not None else None,  # type: ignore[call-overload]
            allow_methods=items("allow_methods"),
            allow_headers=items("allow_headers"),
        )

    def origin_answer(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for a request from `origin`, None when it is not allowed."""
        if origin is None:
            return None
        if origin in self.allowed_origins:
            return origin
        return "*" if "*" in self.allowed_origins else None

    def allows(self, origin: str | None) -> bool:
        return self.origin_answer(origin) is not None

    def preflight_headers(self, headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
        """The headers answering a preflight (request headers lower-cased), empty when it is refused."""
        allowed = self.origin_answer(headers.get("origin"))
        method = headers.get("access-control-request-method")
        if allowed is None or method is None or method not in self.allow_methods:
            return []
        requested = [h.strip() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()]
        permitted = SIMPLE_HEADERS | {h.lower() for h in self.allow_headers}
        if any(h.lower() not in permitted for h in requested):
            return []
        out = [(b"vary", b"Origin"), (b"access-control-allow-origin", allowed.encode("latin-1"))]
        if self.allow_credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        if self.max_age:
            out.append((b"access-control-max-age", str(self.max_age).encode()))
        out.append((b"access-control-allow-methods", method.encode("latin-1")))
        if requested:
            out.append((b"access-control-allow-headers", ",".join(requested).encode("latin-1")))
        return out

    def response_headers(self, origin: str | None, present: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """`present` (an actual response's headers) with the CORS headers an allowed origin gets."""
        allowed = self.origin_answer(origin)
        names = {k.lower() for k, _ in present}
        if allowed is None or b"access-control-allow-origin" in names:
            return present
        vary = next((v for k, v in present if k.lower() == b"vary"), None)
        out = [(k, v) for k, v in present if k.lower() != b"vary"]
        out.append((b"vary", vary + b",Origin" if vary else b"Origin"))
        out.append((b"access-control-allow-origin", allowed.encode("latin-1")))
        if self.allow_credentials:
            out.append((b"access-control-allow-credentials", b"true"))
        if self.expose_headers:
            out.append((b"access-control-expose-headers", ",".join(self.expose_headers).encode("latin-1")))
        return out


def _origin(scope: Scope) -> str | None:
    """The request's Origin header (the last one, as the lower-cased dict of all headers would keep)."""
    origin = None
    for name, value in scope["headers"]:
        if name.lower() == b"origin":
            origin = value.decode("latin-1")
    return origin


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


class CorsMiddleware:
    """Answers OPTIONS itself (before authentication) and marks responses to allowed origins.

    `exempt` paths (the dashboard's, served to its own origin with its session cookie) are left alone.
    """

    def __init__(self, app: ASGIApp, rules: CorsRules, exempt: Callable[[str], bool] = lambda path: False) -> None:
        self.app = app
        self.rules = rules
        self.exempt = exempt
        self.tus_rules = dataclasses.replace(
            rules,
            expose_headers=tuple(dict.fromkeys((*rules.expose_headers, *tus.EXPOSED_HEADERS))),
            allow_headers=tuple(dict.fromkeys((*rules.allow_headers, *TUS_REQUEST_HEADERS))),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        if scope["method"] != "OPTIONS" and not self.rules.allows(_origin(scope)):
            # Nothing to add: no origin (every API client), or one allowed by neither rule set (they share origins).
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        rules = self.tus_rules if TUS_PATHS.match(scope["path"]) else self.rules
        if scope["method"] == "OPTIONS" and rules is self.tus_rules and "access-control-request-method" not in headers:
            await self.app(scope, receive, send)  # tus's own discovery, not a preflight
            return
        if scope["method"] == "OPTIONS":
            answer = [(b"content-length", b"0"), *rules.preflight_headers(headers)]
            await send({"type": "http.response.start", "status": 200, "headers": answer})
            await send({"type": "http.response.body", "body": b""})
            return
        origin = headers.get("origin")
        if not rules.allows(origin):
            await self.app(scope, receive, send)
            return

        async def send_marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = rules.response_headers(origin, list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_marked)
