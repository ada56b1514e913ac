"""A small real HTTP server on loopback for web-download tests: files, redirects and a slow stream."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class FileServer:
    """GET /files/NAME serves root/NAME; /redirect?to=URL answers 302; /slow/NAME trickles NAME out;
    /endless never stops sending (no Content-Length)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        handler = self._handler()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        root = self.root

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", parse_qs(parts.query)["to"][0])
                    self.end_headers()
                    return
                if parts.path == "/endless":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    block = bytes(64 * 1024)
                    while True:
                        try:
                            self.wfile.write(block)
                        except (BrokenPipeError, ConnectionResetError):
                            return
                        time.sleep(0.005)
                kind, _, name = parts.path.strip("/").partition("/")
                path = root / name
                if kind not in ("files", "slow") or not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                step = len(data) if kind == "files" else 64 * 1024
                for offset in range(0, len(data), step):
                    try:
                        self.wfile.write(data[offset : offset + step])
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    if kind == "slow":
                        time.sleep(0.2)

        return Handler
