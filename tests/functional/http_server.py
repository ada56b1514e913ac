"""A small real HTTP server on loopback for fetch tests: files, redirects, a slow stream and a drip."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


class FileServer:
    """GET /files/NAME serves root/NAME; /redirect?to=URL answers 302; /slow/NAME trickles NAME out;
    /drip/NAME sends one byte of NAME every `drip_every` seconds. `hits` lists the paths asked for.
    /endless never stops sending (no Content-Length)."""

    def __init__(self, root: Path, drip_every: float = 0.5) -> None:
        self.root = root
        self.drip_every = drip_every
        self.hits: list[str] = []
        self.hosts: list[str] = []  # the Host header of each request
        self.tokens: list[str | None] = []  # the X-Auth-Token header of each request
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
        root, server = self.root, self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                server.hits.append(self.path)
                server.hosts.append(self.headers.get("Host", ""))
                server.tokens.append(self.headers.get("X-Auth-Token"))
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
                if kind not in ("files", "slow", "drip") or not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                if self.command == "HEAD":
                    return
                step = {"files": len(data) or 1, "slow": 64 * 1024, "drip": 1}[kind]
                for offset in range(0, len(data), step):
                    try:
                        self.wfile.write(data[offset : offset + step])
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    if kind == "slow":
                        time.sleep(0.2)
                    elif kind == "drip":
                        time.sleep(server.drip_every)

        return Handler
