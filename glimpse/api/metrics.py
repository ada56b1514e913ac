"""Requests measured (by route template and status), image bytes counted as they flow, and the scrape endpoint.

The route of a request is known once Starlette has matched it (scope["endpoint"]); this middleware sits outside
the router and reads it from the same scope, so a label is always a template and an unknown path is "unmatched":
nobody can grow the metrics by inventing URLs.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Mapping

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glimpse.api.access_log import body_length, declared_length, unsent
from glimpse.api.errors import error_response
from glimpse.metrics.instruments import CONTENT_TYPE, Metrics
from glimpse.ops_options import MetricsConfig

IMAGE_FILE = "/v2/images/{image_id}/file"
IMAGE_STAGE = "/v2/images/{image_id}/stage"
# (method, route) of the requests whose bodies are image data coming in, and the operation label
UPLOADS = {("PUT", IMAGE_FILE): "upload", ("PUT", IMAGE_STAGE): "stage"}
DOWNLOADS = frozenset({("GET", IMAGE_FILE)})
UNMATCHED = "unmatched"


def peer_allowed(scope: Scope, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == n.version and address in n for n in networks)


class MetricsMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        config: MetricsConfig,
        templates: Mapping[object, str],
        fixed: Callable[[str], str | None] = lambda path: None,
    ) -> None:
        """templates: route endpoint -> path template; fixed: the label of paths served before routing."""
        self.app = app
        self.metrics = metrics
        self.config = config
        self.templates = templates
        self.fixed = fixed
        for operation in UPLOADS.values():
            metrics.uploads.labels(operation)  # shown as 0 before the first upload

    def _route(self, scope: Scope) -> str:
        try:
            template = self.templates.get(scope.get("endpoint"))
        except TypeError:  # an endpoint that is no function: the dashboard's own router, unhashable
            template = None
        return template or self.fixed(scope["path"]) or UNMATCHED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.config.path:
            await self._scrape(scope, receive, send)
            return
        method = scope["method"]
        started = time.perf_counter()
        status = 500
        uploading: str | None = None
        m = self.metrics

        async def counting_receive() -> Message:
            nonlocal uploading
            message = await receive()
            if message["type"] == "http.request":
                if uploading is None:
                    uploading = UPLOADS.get((method, self._route(scope)), "")
                    if uploading:
                        m.uploads.labels(uploading).inc()
                if uploading and message.get("body"):
                    m.uploaded.labels(uploading).inc(len(message["body"]))
            return message

        downloading: bool | None = None
        declared = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, downloading, declared
            if message["type"] == "http.response.start":
                status = message["status"]
                downloading = (method, self._route(scope)) in DOWNLOADS
                declared = declared_length(message)
            elif downloading:
                length = body_length(message, declared) or 0
                try:
                    await send(message)
                except OSError as exc:
                    length -= unsent(message, exc)
                    raise
                finally:
                    if length > 0:
                        m.downloaded.inc(length)
                return
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            if uploading:
                m.uploads.labels(uploading).dec()
            m.answered(method, self._route(scope), status, time.perf_counter() - started)

    async def _scrape(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if not peer_allowed(scope, self.config.allowed_source_ranges):
            message = "Metrics are served only to the networks of [metrics] allowed_source_ranges."
            response: Response = error_response(request, 403, message)
        elif scope["method"] not in ("GET", "HEAD"):
            response = error_response(request, 405, f"The method {scope['method']} is not allowed for this resource.")
            response.headers["Allow"] = "GET, HEAD"
        else:
            body = await run_in_threadpool(self.metrics.exposition)
            response = Response(body, headers={"Content-Type": CONTENT_TYPE})
        await response(scope, receive, send)
