"""A real webhook receiver on loopback: checks each request's signature as a receiver should, records the ids.

`deliveries` lists every request that carried a valid signature (id, type, subject); `rejected` counts the
others. `concurrent` lists ids that arrived while the same id was still being answered (two senders at once).
`hold` makes every request wait until released (a receiver that takes too long); `delay` answers slowly.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from glimpse.domain.webhook_delivery import SIGNATURE_HEADER, verify


@dataclass(frozen=True)
class Received:
    id: str
    type: str
    subject: str
    data: Any


class Receiver:
    def __init__(self, secret: str, port: int = 0) -> None:
        self.secret = secret
        self.port = port
        self.deliveries: list[Received] = []
        self.rejected = 0
        self.concurrent: list[str] = []
        self.delay = 0.0
        self.hold = threading.Event()  # set: requests wait on `release`
        self.release = threading.Event()
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        httpd.daemon_threads = True
        self.port = httpd.server_address[1]
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections until start() again (same port)."""
        if self._httpd is not None:
            self.release.set()
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def ids(self) -> list[str]:
        with self._lock:
            return [r.id for r in self.deliveries]

    def wait_for(self, count: int, timeout: float = 60) -> list[Received]:
        """Until `count` distinct ids arrived; their first deliveries, in arrival order."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                first: dict[str, Received] = {}
                for r in self.deliveries:
                    first.setdefault(r.id, r)
            if len(first) >= count:
                return list(first.values())
            time.sleep(0.1)
        raise AssertionError(f"{len(first)} distinct events arrived, not {count}: {[r.type for r in first.values()]}")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not verify(receiver.secret, self.headers.get(SIGNATURE_HEADER, ""), body):
                    with receiver._lock:
                        receiver.rejected += 1
                    self._answer(401)
                    return
                event = json.loads(body)
                got = Received(event["id"], event["type"], event["subject"], event["data"])
                with receiver._lock:
                    if got.id in receiver._in_flight:
                        receiver.concurrent.append(got.id)
                    receiver._in_flight.add(got.id)
                    receiver.deliveries.append(got)
                try:
                    if receiver.hold.is_set():
                        receiver.release.wait(120)
                    time.sleep(receiver.delay)
                    self._answer(204)
                finally:
                    with receiver._lock:
                        receiver._in_flight.discard(got.id)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler
