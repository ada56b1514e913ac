"""The zerocopysend extension of our uvicorn protocol, on a real server and real sockets: what an application may
send by it (a range, the rest of a file from its position, several pieces, chunked framing), HEAD, keep-alive,
and a file shorter than the range it promised."""

from __future__ import annotations

import gc
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from glimpse.cli.http_protocol import BoundedHttpToolsProtocol
from glimpse.streaming import ZEROCOPYSEND

DATA = os.urandom(9 * 1024 * 1024 + 7)  # more than two windows
offered: list[bool] = []


class _Marker:
    """Something a request's scope holds, to see when the request's objects are freed."""


markers: list[weakref.ref[_Marker]] = []


def _file(tmp: Path) -> Path:
    path = tmp / "data.bin"
    if not path.exists():
        path.write_bytes(DATA)
    return path


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    offered.append(ZEROCOPYSEND in scope.get("extensions", {}))
    marker = scope["marker"] = _Marker()
    markers.append(weakref.ref(marker))
    del marker
    path = Path(scope["path"].removeprefix("/file"))
    case = scope["query_string"].decode()
    with open(path, "rb") as handle:
        if case == "range":
            headers = [(b"content-length", b"1000")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": ZEROCOPYSEND, "file": handle, "offset": 5, "count": 1000})
        elif case == "chunked-rest":  # no length: chunked; from the file's position to its end
            handle.seek(100)
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": ZEROCOPYSEND, "file": handle, "count": 10, "more_body": True})
            await send({"type": ZEROCOPYSEND, "file": handle})
            assert handle.tell() == len(DATA)  # read as far as a read would have
        elif case == "short":  # promises more than the file holds
            headers = [(b"content-length", str(len(DATA) + 10).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": ZEROCOPYSEND, "file": handle, "offset": 0, "count": len(DATA) + 10})
        else:
            headers = [(b"content-length", str(len(DATA)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": ZEROCOPYSEND, "file": handle, "offset": 0, "count": len(DATA)})


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = _file(tmp_path_factory.mktemp("zerocopy"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    # no log settings: uvicorn would set its loggers' levels for the whole test process
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free, http=BoundedHttpToolsProtocol, log_level=None, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{free}/file{path}"
    server.should_exit = True
    thread.join(5)


def test_a_whole_file_a_range_and_head_on_one_connection(url: str) -> None:
    with httpx.Client(timeout=30) as client:
        whole = client.get(url)
        assert whole.content == DATA and offered[-1]
        assert client.get(url + "?range").content == DATA[5:1005]
        head = client.head(url)
        assert head.headers["content-length"] == str(len(DATA)) and head.content == b""
        assert client.get(url + "?range").content == DATA[5:1005]  # the connection is still in step


def test_pieces_without_a_length_go_chunked_from_the_file_position(url: str) -> None:
    answer = httpx.get(url + "?chunked-rest", timeout=30)
    assert answer.headers["transfer-encoding"] == "chunked"
    assert answer.content == DATA[100:]


def test_a_file_shorter_than_promised_cuts_the_connection(url: str) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url + "?short", timeout=30)
    assert httpx.get(url + "?range", timeout=30).content == DATA[5:1005]  # the server goes on


def test_a_request_is_freed_as_it_ends_not_by_a_collection(url: str) -> None:
    """The sender the protocol gives a request must not tie the request's objects into a reference cycle (the
    protocol's cycle holds the sender as its send): a cycle waits for the garbage collector, whose collection of
    a few thousand requests' worth paused a worker for tens of milliseconds (p99)."""
    gc.collect()
    gc.disable()
    try:
        answer = httpx.get(url + "?range", headers={"connection": "close"}, timeout=30)
        assert answer.content == DATA[5:1005]
        deadline = time.monotonic() + 5
        while markers[-1]() is not None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert markers[-1]() is None
    finally:
        gc.enable()
