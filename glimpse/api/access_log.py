"""One access line per request on the `glimpse.access` logger, and the request named on every line it logs.

A pure ASGI middleware (no Request object, no body buffering): it counts the bytes of the messages
that pass and times the exchange. A response that did not complete says why at the end of its line:
"client disconnected", "error" (an exception: the handler outside answers 500, after this line, which
is logged with its traceback and the same request id), "cancelled at shutdown" or "incomplete".
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glimpse import logs
from glimpse.logsafe import redact_query
from glimpse.streaming import PATHSEND, ZEROCOPYSEND, ClientGone

access_log = logging.getLogger("glimpse.access")


@dataclass
class _Exchange:
    status: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    complete: bool = False
    disconnected: bool = False
    failed: bool = False
    cancelled: bool = False
    declared: int = 0  # the response's Content-Length

    def outcome(self) -> str:
        # Every declared byte went out: a client that hangs up before the body's closing (empty) message was
        # served in full (a download reading ahead can still be finishing when the client has all it asked for).
        if self.complete or 0 < self.declared <= self.bytes_out:
            return "complete"
        if self.disconnected:
            return "client disconnected"
        if self.cancelled:
            return "cancelled at shutdown"
        return "error" if self.failed else "incomplete"


def declared_length(start: Message) -> int:
    """The Content-Length of a response's start message (0 when it has none)."""
    for name, value in start.get("headers", ()):
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def body_length(message: Message, declared: int) -> int | None:
    """Bytes of the response body a message carries (None: not a body message). A file the server sends
    itself counts its range (zerocopysend) or the response's declared length (pathsend: the whole file)."""
    kind = message["type"]
    if kind == "http.response.body":
        return len(message.get("body", b""))
    if kind == ZEROCOPYSEND:
        count = message.get("count")
        return declared if count is None else int(count)
    if kind == PATHSEND:
        return declared
    return None


def unsent(message: Message, exc: BaseException) -> int:
    """Of a file the server was sending itself when the client went away, the bytes that never left."""
    if message["type"] == ZEROCOPYSEND and isinstance(exc, ClientGone):
        return int(message.get("count") or 0) - exc.sent
    return 0


def logged_path(scope: Scope) -> str:
    """The path as the client sent it (percent-escapes kept: no line breaks from %0A), the query redacted."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else scope.get("root_path", "") + scope["path"]
    path = path.encode("unicode_escape").decode("ascii")
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{redact_query(query)}" if query else path


LINE = '%s "%s %s HTTP/%s" status: %s len: %d in: %d time: %.4f%s'


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        exchange = _Exchange()

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                exchange.bytes_in += len(message.get("body", b""))
            elif message["type"] == "http.disconnect" and not exchange.complete:
                exchange.disconnected = True
            return message

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.declared = declared_length(message)
            else:
                length = body_length(message, exchange.declared)
                if length is not None:
                    exchange.bytes_out += length
                    exchange.complete = not message.get("more_body", False)
            try:
                await send(message)
            except OSError as exc:  # uvicorn's ClientDisconnected, or ClientGone from a file being sent
                exchange.bytes_out -= unsent(message, exc)
                exchange.complete, exchange.disconnected = False, True
                raise

        with logs.bound(scope):
            try:
                await self.app(scope, counted_receive, counted_send)
            except asyncio.CancelledError as exc:  # uvicorn's deadline at shutdown: no answer is sent
                exchange.cancelled = True
                logs.mark_logged(exc)  # said here; uvicorn's traceback of it says nothing more
                raise
            except BaseException:
                exchange.status = exchange.status or 500  # the error handler outside answers 500
                exchange.failed = True
                raise
            finally:
                self._log(scope, exchange, time.perf_counter() - started)

    @staticmethod
    def _log(scope: Scope, exchange: _Exchange, duration: float) -> None:
        if not access_log.isEnabledFor(logging.INFO):
            return
        client = scope.get("client")
        fields = {
            "remote_addr": client[0] if client else None,
            "method": scope["method"],
            "path": logged_path(scope),
            "status": exchange.status,
            "bytes_in": exchange.bytes_in,
            "bytes_out": exchange.bytes_out,
            "duration": round(duration, 6),
            "outcome": exchange.outcome(),
        }
        note = "" if exchange.complete else f" ({fields['outcome']})"
        args = (
            fields["remote_addr"] or "-", fields["method"], fields["path"], scope.get("http_version", "1.1"),
            exchange.status or "-", exchange.bytes_out, exchange.bytes_in, duration, note,
        )  # fmt: skip
        # What access_log.info() would do, without its walk up the stack for the caller: it is always this line.
        # (The line number only: a frame kept in a local refers to itself, and would take the whole request's
        # objects into the cyclic garbage that a collection pauses every request for.)
        line = sys._getframe().f_lineno
        record = access_log.makeRecord(
            access_log.name, logging.INFO, __file__, line, LINE, args, None, "_log", {"access": fields}
        )
        access_log.handle(record)
