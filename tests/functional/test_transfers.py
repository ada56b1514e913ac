"""Slow image transfers never take the threads metadata requests need (a real `glimpse serve`)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.functional.server import GlimpseServer

UPLOADS = 200
DOWNLOADS = 60


@pytest.fixture
def glimpse(tmp_path: Path) -> Iterator[GlimpseServer]:
    server = GlimpseServer(tmp_path, extra_conf="workers = 1\n").start()
    yield server
    server.stop()


def _stalled(server: GlimpseServer, request: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that reads nothing, and slowly
    sock.sendall(request)
    return sock


def _statuses(api: httpx.Client, ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for image_id in ids:
        status = api.get(f"/v2/images/{image_id}").json()["status"]
        found[status] = found.get(status, 0) + 1
    return found


def test_slow_uploads_and_downloads_leave_threads_for_metadata(glimpse: GlimpseServer) -> None:
    api = httpx.Client(base_url=glimpse.url, timeout=30)
    body = {"disk_format": "raw", "container_format": "bare"}
    ids = [api.post("/v2/images", json=body).json()["id"] for _ in range(UPLOADS)]
    full = api.post("/v2/images", json=body).json()["id"]
    data = {"Content-Type": "application/octet-stream"}
    assert api.put(f"/v2/images/{full}/file", content=b"x" * (32 * 1024 * 1024), headers=data).status_code == 204
    uploads = [
        _stalled(
            glimpse,
            f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {1024 * 1024}\r\n\r\nsome bytes, then nothing".encode(),
        )
        for image_id in ids
    ]
    served = [
        _stalled(glimpse, f"GET /v2/images/{full}/file HTTP/1.1\r\nHost: x\r\n\r\n".encode()) for _ in range(DOWNLOADS)
    ]
    try:
        deadline = time.monotonic() + 60
        while _statuses(api, ids[:20]).get("saving", 0) < 20 and time.monotonic() < deadline:
            time.sleep(0.5)  # the first uploads have started and hold their threads
        started = time.monotonic()
        listing = httpx.get(f"{glimpse.url}/v2/images?limit=5", timeout=10)
        assert listing.status_code == 200
        assert time.monotonic() - started < 10
        assert httpx.get(f"{glimpse.url}/v2/images/{ids[-1]}", timeout=10).status_code == 200
    finally:
        for sock in uploads + served:
            sock.close()
    deadline = time.monotonic() + 120
    statuses = _statuses(api, ids)
    while statuses != {"queued": UPLOADS} and time.monotonic() < deadline:
        time.sleep(1)
        statuses = _statuses(api, ids)
    assert statuses == {"queued": UPLOADS}  # every dropped upload went back to queued
