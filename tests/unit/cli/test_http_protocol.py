"""The server bounds a request's head while httptools parses it, before the application sees it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from glimpse.cli.http_protocol import HEAD_ENV, BoundedHttpToolsProtocol

seen: list[int] = []


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    seen.append(len(scope["headers"]))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=free, http=BoundedHttpToolsProtocol, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield free
    server.should_exit = True
    thread.join(5)


def _ask(port: int, head: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head)
        answer = b""
        while chunk := conn.recv(65536):  # both answers close the connection
            answer += chunk
        return answer


def test_ordinary_requests_pass(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HEAD_ENV, "4096")
    answer = _ask(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * 1000 + b"\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "head",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(2000)) + b"\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n\r\n",
        b"GET /?" + b"q" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
)
def test_a_head_past_the_bound_is_431_before_the_app_runs(
    port: int, monkeypatch: pytest.MonkeyPatch, head: bytes
) -> None:
    monkeypatch.setenv(HEAD_ENV, "4096")
    before = len(seen)
    answer = _ask(port, head)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert len(seen) == before
