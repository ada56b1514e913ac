"""The versions document of a real server, single-store and multi-store, and what the real clients make of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.functional.clients import Clients
from tests.functional.server import GlimpseServer

MULTI = "enabled_backends = a:file, b:file\n[glance_store]\ndefault_backend = a\n"


@pytest.fixture(scope="module", params=["single", "multi"])
def configured(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    workdir = tmp_path_factory.mktemp(f"versions-{request.param}")
    server = GlimpseServer(workdir, extra_conf=MULTI if request.param == "multi" else "").start()
    yield server
    server.stop()


def _versions(server: GlimpseServer) -> list[str]:
    return [v["id"] for v in httpx.get(f"{server.url}/versions").json()["versions"]]


def test_the_document_matches_the_configuration(configured: GlimpseServer) -> None:
    root = httpx.get(f"{configured.url}/")
    assert root.status_code == 300
    listed = [(v["id"], v["status"]) for v in root.json()["versions"]]
    assert [v for v, s in listed if s == "CURRENT"] == ["v2.17"]
    multi = "enabled_backends" in configured.conf.read_text()
    assert ("v2.12", "SUPPORTED") in listed if multi else ("v2.12", "SUPPORTED") not in listed
    assert ("v2.9", "SUPPORTED") in listed and ("v2.15", "SUPPORTED") in listed
    assert not {v for v, _ in listed} & {"v2.14", "v2.16", "v2.18"}  # no cache API
    assert _versions(configured) == [v for v, _ in listed]


def test_glance_image_tasks_follows_the_advertised_versions(configured: GlimpseServer, tmp_path: Path) -> None:
    clients = Clients(configured.url, tmp_path / "home")
    image = httpx.post(f"{configured.url}/v2/images", json={"name": "tasks"}).json()
    result = clients.glance("image-tasks", image["id"], check=False)
    if "v2.12" in _versions(configured):  # multi-store, as Glance
        assert result.returncode == 0, result.stderr
        assert "Message" in result.stdout and "Status" in result.stdout
    else:  # Glance without enabled_backends does not list 2.12 either, and glanceclient says so
        assert result.returncode == 1
        assert "does not support image tasks API (v2.12)" in result.stderr
    assert image["id"] in clients.glance("image-list").stdout


def test_openstacksdk_negotiates_the_current_version(configured: GlimpseServer, tmp_path: Path) -> None:
    clients = Clients(configured.url, tmp_path / "home")
    found = clients.sdk(
        "ep = conn.image.get_endpoint_data()\n"
        "print(json.dumps([list(ep.api_version), [i.name for i in conn.image.images()]]))"
    )
    assert found[0] == [2, 17]
    assert isinstance(found[1], list)
