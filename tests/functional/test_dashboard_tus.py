"""The dashboard's tus resource (/dashboard/images/{id}/uploads) against a real server: only the session's user,
with the session's CSRF token, may touch an upload; a plain tus exchange with the session works end to end and is
the same upload the API shows."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest

from tests.disk_bytes import raw_disk_bytes
from tests.functional.dashboard_session import DashboardSession
from tests.functional.server import GlimpseServer

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = {**TUS, "Content-Type": "application/offset+octet-stream"}


@pytest.fixture
def owner(sqlite_server: GlimpseServer) -> Iterator[tuple[DashboardSession, str, str]]:
    """A member logged in to the dashboard, one new image of theirs, and the session's CSRF token."""
    session = DashboardSession(sqlite_server.url)
    project = f"prj-{os.urandom(3).hex()}"
    session.login(project)
    csrf = session.csrf("/dashboard/images/new")
    form = {"csrf_token": csrf, "name": "tus-dash", "disk_format": "raw", "container_format": "bare"}
    created = session.send("POST", "/dashboard/images/new", data=form, headers={"Accept": "application/json"})
    assert created.status_code == 201, created.text
    assert created.json()["uploads"].endswith("/uploads")
    yield session, created.json()["uploads"], csrf
    session.client.close()


def test_the_sessions_user_uploads_over_tus(
    sqlite_server: GlimpseServer, owner: tuple[DashboardSession, str, str]
) -> None:
    session, uploads, csrf = owner
    data = raw_disk_bytes(300_001)
    with_token = {**TUS, "X-CSRF-Token": csrf}
    options = session.send("OPTIONS", uploads, headers=with_token)
    assert options.status_code == 204 and "concatenation" in options.headers["tus-extension"]
    made = session.send("POST", uploads, headers={**with_token, "Upload-Length": str(len(data))})
    assert made.status_code == 201, made.text
    location = made.headers["location"]
    assert "/dashboard/images/" in location
    first = session.send("PATCH", location, content=data[:100_000],
                         headers={**CHUNK, "X-CSRF-Token": csrf, "Upload-Offset": "0"})  # fmt: skip
    assert (first.status_code, first.headers["upload-offset"]) == (204, "100000")
    stale = session.send("PATCH", location, content=data[:10], headers={**CHUNK, "X-CSRF-Token": csrf,
                                                                        "Upload-Offset": "0"})  # fmt: skip
    assert stale.status_code == 409 and stale.headers["tus-resumable"] == "1.0.0"
    head = session.send("HEAD", location, headers=with_token)
    assert head.headers["upload-offset"] == "100000"
    image_id = uploads.split("/images/")[1].split("/")[0]
    api = session.client.head(location.replace("/dashboard/", "/v2/"), headers=TUS)  # noauth admin sees it too
    assert api.headers["upload-offset"] == "100000"
    rest = session.send("PATCH", location, content=data[100_000:],
                        headers={**CHUNK, "X-CSRF-Token": csrf, "Upload-Offset": "100000"})  # fmt: skip
    assert rest.status_code == 204
    image = session.client.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["checksum"]) == ("active", hashlib.md5(data).hexdigest())


def test_no_session_no_token_or_another_project_touches_nothing(
    sqlite_server: GlimpseServer, owner: tuple[DashboardSession, str, str]
) -> None:
    session, uploads, csrf = owner
    made = session.send("POST", uploads, headers={**TUS, "X-CSRF-Token": csrf, "Upload-Length": "10"})
    location = made.headers["location"]
    anonymous = DashboardSession(sqlite_server.url)
    requests = (
        ("POST", uploads, {"Upload-Length": "10"}),
        ("HEAD", location, {}),
        ("PATCH", location, {**CHUNK, "Upload-Offset": "0"}),
        ("DELETE", location, {}),
    )
    for method, url, extra in requests:
        no_session = anonymous.send(method, url, headers={**TUS, **extra, "X-CSRF-Token": csrf})
        assert no_session.status_code == 401, (method, no_session.status_code)
        no_token = session.send(method, url, headers={**TUS, **extra}, content=b"x" * 10 if extra else None)
        assert no_token.status_code == 403 and no_token.headers["tus-resumable"] == "1.0.0", method
    other = DashboardSession(sqlite_server.url)
    other.login(f"prj-{os.urandom(3).hex()}")
    other_csrf = other.csrf("/dashboard/images/new")
    for method in ("HEAD", "PATCH", "DELETE"):
        headers = {**CHUNK, "Upload-Offset": "0"} if method == "PATCH" else dict(TUS)
        refused = other.send(method, location, headers={**headers, "X-CSRF-Token": other_csrf}, content=b"y" * 10)
        assert refused.status_code == 404, (method, refused.status_code)
    head = session.send("HEAD", location, headers={**TUS, "X-CSRF-Token": csrf})
    assert head.status_code == 200 and head.headers["upload-offset"] == "0"
