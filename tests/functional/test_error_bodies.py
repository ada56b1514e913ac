"""The real openstack CLI shows the reason of a 400, from the error body Glimpse formats as Glance (WebOb) does."""

from __future__ import annotations

import http.client
from pathlib import Path

import httpx

from tests.functional.clients import Clients
from tests.functional.server import GlimpseServer


def test_openstack_image_create_shows_why_it_was_refused(sqlite_server: GlimpseServer, tmp_path: Path) -> None:
    clients = Clients(sqlite_server.url, tmp_path / "home")
    refused = clients.openstack("image", "create", "--min-disk", "-1", "refused-image", check=False)
    assert refused.returncode != 0
    assert "BadRequestException: 400" in refused.stderr
    assert "min_disk" in refused.stderr, refused.stderr  # the reason, not only "Bad Request"
    assert "<html>" not in refused.stderr and "<h1>" not in refused.stderr


def test_each_accept_gets_the_body_glance_sends(sqlite_server: GlimpseServer) -> None:
    url = f"{sqlite_server.url}/v2/images/00000000-0000-0000-0000-000000000000"
    bodies = {}
    for accept in ("", "*/*", "application/json", "text/html", "text/plain"):
        response = httpx.get(url, headers={"Accept": accept})
        assert response.status_code == 404
        bodies[accept] = (response.headers["content-type"].split(";")[0], response.text)
    assert bodies[""][0] == "text/plain" and bodies[""][1].startswith("404 Not Found\n\n")
    assert bodies["text/plain"] == bodies[""]
    assert bodies["*/*"][0] == bodies["text/html"][0] == "text/html"
    assert "<h1>404 Not Found</h1>" in bodies["*/*"][1]
    assert bodies["application/json"][0] == "application/json"
    connection = http.client.HTTPConnection(url.split("/")[2], timeout=10)  # sends no Accept at all
    connection.request("GET", "/" + url.split("/", 3)[3])
    raw = connection.getresponse()
    assert raw.status == 404 and raw.getheader("content-type", "").startswith("text/plain")
    connection.close()
