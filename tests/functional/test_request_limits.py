"""A real `glimpse serve` refuses oversized requests without reading them or growing."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.functional.server import GlimpseServer

MB = 1024 * 1024


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):  # the peak resident size
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _send_chunked(port: int, head: bytes, total: int) -> tuple[int, bytes]:
    """Stream `total` bytes of chunked body; the bytes the server took before closing, and its status line."""
    sent = 0
    chunk = b" " * (64 * 1024)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            while sent < total:
                conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
            conn.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection: what we wanted
        return sent, conn.recv(200).split(b"\r\n")[0]


def test_a_100_mb_json_body_is_413_unread_and_memory_stays_flat(sqlite_server: GlimpseServer) -> None:
    assert sqlite_server.proc is not None
    before = _rss_kib(sqlite_server.proc.pid)
    head = b"POST /v2/images HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    sent, status = _send_chunked(sqlite_server.port, head, 100 * MB)
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert sent < 50 * MB  # cut off: the connection was closed long before the end (socket buffers aside)
    assert _rss_kib(sqlite_server.proc.pid) - before < 20 * 1024  # no 600 MiB growth as before


def test_an_announced_100_mb_json_body_is_413_at_once(sqlite_server: GlimpseServer) -> None:
    with socket.create_connection(("127.0.0.1", sqlite_server.port), timeout=10) as conn:
        conn.sendall(b"PATCH /v2/images/x HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
        assert conn.recv(200).startswith(b"HTTP/1.1 413")


def test_a_head_of_megabytes_is_431(sqlite_server: GlimpseServer) -> None:
    with socket.create_connection(("127.0.0.1", sqlite_server.port), timeout=10) as conn:
        headers = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(2000))
        try:
            conn.sendall(b"GET /v2/images HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        except OSError:
            pass
        assert conn.recv(200).startswith(b"HTTP/1.1 431")
