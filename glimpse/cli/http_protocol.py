"""uvicorn's httptools protocol with a bound on the bytes of one request's URL and headers, offering ASGI's
zero-copy send extension (glimpse.cli.zerocopy).

httptools keeps every header it parses until the request is complete, with no limit of its own, so a
client could send megabytes of headers before the application sees any of it. This protocol counts
them as they are parsed and answers 431 once a request's head passes the bound. The finer limits
(header count, one line's length, Glance's error format) are RequestLimitsMiddleware's.
"""

from __future__ import annotations

import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from glimpse.cli.zerocopy import ZeroCopySender, offers_zerocopy
from glimpse.streaming import ZEROCOPYSEND

HEAD_ENV = "GLIMPSE_MAX_REQUEST_HEAD"  # read by every worker process, which starts from a fresh import


def head_bound(max_header_line: int) -> int:
    """Bytes of URL plus headers one request may send: room for a few maximal lines and ordinary ones."""
    return 4 * max_header_line


class HeadTooLarge(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        self._head_bound = int(os.environ.get(HEAD_ENV) or head_bound(16384))
        self._head_too_large = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # uvicorn made this request's cycle (not an upgrade, which keeps the previous one); its task starts on the
        # loop's next turn, so the app is handed the wrapped send
        if cycle is not None and cycle.scope is self.scope and offers_zerocopy(self.transport):
            self.scope.setdefault("extensions", {})[ZEROCOPYSEND] = {}
            cycle.send = ZeroCopySender(cycle, cycle.send)  # type: ignore[method-assign]

    def _count(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > self._head_bound:
            self._head_too_large = True
            raise HeadTooLarge()  # httptools stops parsing; uvicorn answers through send_400_response

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def send_400_response(self, msg: str) -> None:
        if not getattr(self, "_head_too_large", False):
            super().send_400_response(msg)
            return
        text = f"Request header fields too large: at most {self._head_bound} bytes of URL and headers."
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
            + f"content-length: {len(text)}\r\nconnection: close\r\n\r\n{text}".encode()
        )
        self.transport.close()
