"""Dashboard posts are bounded like the API's; a form that carries the image file streams it, never spooling it."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from glimpse.app import create_app
from glimpse.config import load_settings
from glimpse.dashboard.session import COOKIE

CAP = 4 * 1024 * 1024
MB = 1024 * 1024
BOUNDARY = b"glimpse-test-boundary"


@dataclass
class Dashboard:
    client: TestClient
    app: Starlette
    data_dir: Path

    def csrf(self) -> str:
        match = re.search(r'name="csrf_token" value="([^"]+)"', self.client.get("/dashboard/images/new").text)
        assert match
        return match.group(1)

    def images(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.client.get("/v2/images", headers={"X-Project-Id": "prj"}).json()["images"]
        return found


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    data_dir = tmp_path_factory.mktemp("dashboard-limits")
    conf = data_dir / "glimpse.conf"
    conf.write_text(f"[DEFAULT]\nimage_size_cap = {CAP}\n[oslo_middleware]\nmax_request_body_size = 4096\n")
    app = create_app(load_settings([str(conf)], overrides={"data_dir": str(data_dir)}))
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        login = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/dashboard/login").text)
        assert login
        form = {"csrf_token": login.group(1), "project": "prj", "role": "member"}
        assert client.post("/dashboard/login", data=form).status_code == 303
        yield Dashboard(client, app, data_dir)


def test_a_form_past_max_request_body_size_is_413(dash: Dashboard) -> None:
    before = dash.images()
    form = {"csrf_token": dash.csrf(), "name": "n", "disk_format": "raw", "properties": "k=" + "v" * 5000}
    assert dash.client.post("/dashboard/images/new", data=form).status_code == 413
    assert dash.images() == before


def test_a_form_upload_announced_past_image_size_cap_is_413_and_creates_nothing(dash: Dashboard) -> None:
    before = dash.images()
    form = {"csrf_token": dash.csrf(), "name": "big", "disk_format": "raw"}
    files = {"file": ("big.img", b"\0" * (CAP + 8192), "application/octet-stream")}
    assert dash.client.post("/dashboard/images/new", data=form, files=files).status_code == 413
    assert dash.images() == before


def test_a_form_upload_under_the_cap_is_stored(dash: Dashboard) -> None:
    form = {"csrf_token": dash.csrf(), "name": "small", "disk_format": "raw", "properties": "a=b"}
    files = {"file": ("small.img", b"\1" * 10000, "application/octet-stream")}
    answer = dash.client.post("/dashboard/images/new", data=form, files=files)
    assert answer.status_code == 303
    image_id = answer.headers["location"].rsplit("/", 1)[1]
    image = dash.client.get(f"/v2/images/{image_id}", headers={"X-Project-Id": "prj"}).json()
    assert (image["size"], image["status"], image["a"]) == (10000, "active", "b")


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return b"--" + BOUNDARY + f"\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def _status_of(dash: Dashboard, name: str) -> str | None:
    with sqlite3.connect(dash.data_dir / "glimpse.db") as db:
        row = db.execute("SELECT status FROM images WHERE name = ?", (name,)).fetchone()
    return row[0] if row else None


def _post_streamed(dash: Dashboard, name: str, chunks: int, seen: list[str | None]) -> tuple[int, bytes]:
    """POST the create form over raw ASGI, the file in 1 MiB chunks, noting the image's status before each."""
    head = _part("csrf_token", dash.csrf().encode()) + _part("name", name.encode()) + _part("disk_format", b"raw")
    head += b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="f.img"\r\n\r\n'
    messages = [head, *[b"\2" * MB] * chunks, b"\r\n--" + BOUNDARY + b"--\r\n"]
    cookie = f"{COOKIE}={dash.client.cookies[COOKIE]}".encode()
    scope = {
        "type": "http", "method": "POST", "path": "/dashboard/images/new", "raw_path": b"/dashboard/images/new",
        "query_string": b"", "http_version": "1.1", "scheme": "https", "server": ("testserver", 443),
        "client": ("127.0.0.1", 1), "root_path": "",
        "headers": [(b"host", b"testserver"), (b"cookie", cookie),
                    (b"content-type", b"multipart/form-data; boundary=" + BOUNDARY)],
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        seen.append(_status_of(dash, name))
        body = messages.pop(0) if messages else b""
        return {"type": "http.request", "body": body, "more_body": bool(messages)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(dash.app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], dict(start["headers"]).get(b"location", b"")


def test_a_form_upload_streams_into_the_image_while_it_arrives(dash: Dashboard) -> None:
    seen: list[str | None] = []
    status, location = _post_streamed(dash, "streamed", 3, seen)
    assert status == 303
    # Once the fields had arrived the image existed and was receiving data: every chunk of the file was
    # asked for while it was saving, none spooled first.
    assert seen == [None, "saving", "saving", "saving", "saving"]
    image = dash.client.get(f"/v2/images/{location.decode().rsplit('/', 1)[1]}", headers={"X-Project-Id": "prj"})
    assert (image.json()["status"], image.json()["size"]) == ("active", 3 * MB)


def test_a_streamed_form_upload_past_image_size_cap_leaves_the_image_queued(dash: Dashboard) -> None:
    seen: list[str | None] = []
    status, location = _post_streamed(dash, "too-big", 6, seen)
    assert status == 303  # the image was made; the page tells why its data was refused
    assert len(seen) < 8  # the server stopped reading at the cap
    image = dash.client.get(f"/v2/images/{location.decode().rsplit('/', 1)[1]}", headers={"X-Project-Id": "prj"})
    assert (image.json()["status"], image.json()["size"]) == ("queued", None)
