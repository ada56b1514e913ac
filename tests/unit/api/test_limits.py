"""Request bounds: a body is cut off at its cap while it streams, headers, URL and query are bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from glimpse.app import create_app
from glimpse.config import load_settings

MB = 1024 * 1024


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    return create_app(load_settings(overrides={"data_dir": str(tmp_path_factory.mktemp("limits"))}))


class Endless:
    """A client sending `total` bytes of body in 64 KiB chunks, counting what the server pulled."""

    def __init__(self, total: int) -> None:
        self.left = total
        self.pulled = 0

    async def __call__(self) -> dict[str, Any]:
        chunk = min(self.left, 64 * 1024)
        self.left -= chunk
        self.pulled += chunk
        return {"type": "http.request", "body": b" " * chunk, "more_body": self.left > 0}


def call(
    app: Starlette, method: str, path: str, headers: list[tuple[bytes, bytes]], receive: Any, query: bytes = b""
) -> tuple[int, bytes, dict[bytes, bytes]]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": query,
        "headers": [(b"host", b"testserver"), (b"accept", b"application/json"), *headers],
        "http_version": "1.1", "scheme": "http", "server": ("testserver", 80), "client": ("127.0.0.1", 1),
        "root_path": "", "app": app,
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, dict(start.get("headers", []))


JSON = [(b"content-type", b"application/json")]


def test_a_100_mb_streamed_json_body_is_cut_off_at_the_cap(app: Starlette) -> None:
    client = Endless(100 * MB)
    status, body, headers = call(app, "POST", "/v2/images", JSON, client)
    assert status == 413
    assert b"114688" in body
    assert client.pulled <= 114688 + 64 * 1024  # the server stopped reading one chunk past the cap
    assert headers[b"connection"] == b"close"  # and the rest of the body is not read either


def test_an_announced_100_mb_body_is_refused_before_any_byte_is_read(app: Starlette) -> None:
    client = Endless(100 * MB)
    status, _, _ = call(app, "PATCH", "/v2/images/x", [*JSON, (b"content-length", str(100 * MB).encode())], client)
    assert status == 413
    assert client.pulled == 0


def test_a_body_under_the_cap_is_read(app: Starlette) -> None:
    status, _, _ = call(app, "POST", "/v2/images", JSON, Endless(100 * 1024))
    assert status == 400  # read whole, then refused as malformed JSON (spaces only)


def test_image_data_is_not_capped_by_the_json_limit(app: Starlette) -> None:
    status, _, _ = call(app, "POST", "/v2/images", JSON, Endless(0))
    assert status == 400
    client = Endless(MB)
    status, _, _ = call(app, "PUT", "/v2/images/00000000-0000-0000-0000-000000000000/file", [], client)
    assert status == 404  # the upload path reached the image lookup; no 413 from the JSON limit


def test_too_many_headers(app: Starlette) -> None:
    headers = [(f"x-h{i}".encode(), b"v") for i in range(200)]
    assert call(app, "GET", "/v2/images", headers, Endless(0))[0] == 431


def test_a_header_line_too_long(app: Starlette) -> None:
    assert call(app, "GET", "/v2/images", [(b"x-long", b"v" * 20000)], Endless(0))[0] == 431


def test_a_query_string_too_long(app: Starlette) -> None:
    assert call(app, "GET", "/v2/images", [], Endless(0), query=b"name=" + b"x" * 20000)[0] == 414


def test_too_many_query_parameters(app: Starlette) -> None:
    query = b"&".join(b"p%d=v" % i for i in range(150))
    assert call(app, "GET", "/v2/images", [], Endless(0), query=query)[0] == 400


def test_a_nul_in_the_url(app: Starlette) -> None:
    assert call(app, "GET", "/v2/images", [], Endless(0), query=b"marker=%00")[0] == 400
    assert call(app, "GET", "/v2/images/\x00", [], Endless(0))[0] == 400


def test_odd_paths_answer_404_not_a_redirect(app: Starlette, tmp_path: Path) -> None:
    for path in ("/v2/images/../", "/v2/images/", "/v2/images/x/", "/v2/images/../../etc/passwd"):
        assert call(app, "GET", path, [], Endless(0))[0] == 404, path
