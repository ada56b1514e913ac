"""The egress policy through the real server: what a caller may make the service fetch, and for how long.

Holes these tests close: a location on the service's own API (loopback) fetched and served back to the
caller; a redirect from a trusted web server to an internal one; CGNAT and malformed URLs; a server
dripping a byte at a time keeping an import or a location request forever."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.disk_bytes import raw_disk_bytes
from tests.functional.http_server import FileServer
from tests.functional.server import GlimpseServer

MEMBER = {"X-Project-Id": "project-a", "X-Roles": "member,reader"}
OTHER = {"X-Project-Id": "project-b", "X-Roles": "member,reader"}
DATA = raw_disk_bytes(300_000)
STORES = """enabled_backends = local:file, web:http
enabled_import_methods = glance-direct,web-download
[glance_store]
default_backend = local
[local]
[web]
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    root = tmp_path_factory.mktemp("egress-web")
    (root / "disk.raw").write_bytes(DATA)
    (root / "small.raw").write_bytes(b"x" * 200)
    with FileServer(root, drip_every=0.3) as server:
        yield server


@pytest.fixture(scope="module")
def strict(files: FileServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    """The default policy (any port, to show it is the address that is refused), and the operator's own
    web server trusted for the http store on its one port; slow servers judged over a short window."""
    conf = (
        STORES + "[import_filtering_opts]\nallowed_ports =\n"
        f"[egress]\nhttp_store_allowed_hosts = 127.0.0.1:{files.port}\nmin_rate = 2000\nmin_rate_window = 1\n"
    )
    server = GlimpseServer(tmp_path_factory.mktemp("egress-strict"), extra_conf=conf).start()
    yield server
    server.stop()


def _create(server: GlimpseServer, headers: dict[str, str] = MEMBER) -> str:
    body = {"disk_format": "raw", "container_format": "bare", "name": "egress"}
    response = httpx.post(f"{server.url}/v2/images", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _locate(server: GlimpseServer, image_id: str, url: str, headers: dict[str, str] = MEMBER) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/images/{image_id}/locations", json={"url": url}, headers=headers, timeout=60)


def _status(server: GlimpseServer, image_id: str) -> str:
    return str(httpx.get(f"{server.url}/v2/images/{image_id}", headers=MEMBER).json()["status"])


def test_a_location_cannot_make_the_service_fetch_its_own_api(strict: GlimpseServer, files: FileServer) -> None:
    secret = _create(strict, OTHER)
    put = httpx.put(f"{strict.url}/v2/images/{secret}/file", content=b"other project's data",
                    headers={**OTHER, "Content-Type": "application/octet-stream"})  # fmt: skip
    assert put.status_code == 204
    image_id = _create(strict)
    own_api = [
        f"{strict.url}/v2/images/{secret}/file",
        f"http://localhost:{strict.port}/v2/images/{secret}/file",
        f"http://[::ffff:127.0.0.1]:{strict.port}/v2/images/{secret}/file",
        f"{files.url}/redirect?to={strict.url}/v2/images/{secret}/file",  # the trusted server redirecting
    ]
    for url in own_api:
        refused = _locate(strict, image_id, url)
        assert refused.status_code == 400, (url, refused.text)
        assert any(why in refused.text for why in ("internal address", "not allowed", "own endpoint")), refused.text
    for url in ("http://[::1", f"http://127.0.0.1:{files.port}x/", "http://100.64.0.1/x", "http://héllo/x"):
        assert _locate(strict, image_id, url).status_code == 400, url
    assert _status(strict, image_id) == "queued"
    # The operator's trusted web server works, and the data is what it serves.
    good = _locate(strict, image_id, f"{files.url}/files/disk.raw")
    assert good.status_code == 202, good.text
    image = httpx.get(f"{strict.url}/v2/images/{image_id}", headers=MEMBER).json()
    assert image["status"] == "active" and image["os_hash_value"] == hashlib.sha512(DATA).hexdigest()
    assert httpx.get(f"{strict.url}/v2/images/{image_id}/file", headers=MEMBER).content == DATA


def test_location_policy_is_glance_2_17s(strict: GlimpseServer, files: FileServer) -> None:
    image_id = _create(strict)
    url = f"{files.url}/files/small.raw"
    assert _locate(strict, image_id, url, {"X-Project-Id": "project-a", "X-Roles": "reader"}).status_code == 403
    assert _locate(strict, image_id, url, OTHER).status_code in (403, 404)
    service = {"X-Project-Id": "project-a", "X-Roles": "reader,service"}  # a service acting for the project
    assert _locate(strict, image_id, url, service).status_code == 202
    other_image = _create(strict)
    admin = {"X-Project-Id": "admins", "X-Roles": "admin,member,reader"}
    assert _locate(strict, other_image, url, admin).status_code == 202
    assert _locate(strict, image_id, url).status_code == 409  # no longer queued


def test_a_dripping_location_is_cut_off(strict: GlimpseServer, files: FileServer) -> None:
    image_id = _create(strict)
    started = time.monotonic()
    refused = _locate(strict, image_id, f"{files.url}/drip/small.raw")
    assert refused.status_code == 400 and "bytes/s" in refused.text, refused.text
    assert time.monotonic() - started < 50  # it ends: the drip alone would last a minute
    assert _status(strict, image_id) == "queued"


def _import(server: GlimpseServer, image_id: str, uri: str) -> httpx.Response:
    method = {"name": "web-download", "uri": uri}
    return httpx.post(f"{server.url}/v2/images/{image_id}/import", json={"method": method}, headers=MEMBER)


def test_web_download_refuses_internal_and_malformed_urls(strict: GlimpseServer, files: FileServer) -> None:
    image_id = _create(strict)
    uris = [
        f"{files.url}/files/disk.raw", f"http://localhost:{files.port}/files/disk.raw", "http://100.64.0.1/x",
        "http://[::1", "http://[::1]:80/x", "http://[fd00::1]/x", "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:a9fe:a9fe]/x", "http://host:70000/x", "http://ex ample/x", "http://\u00e9.example/",
    ]  # fmt: skip
    for uri in uris:
        refused = _import(strict, image_id, uri)
        assert refused.status_code == 400, (uri, refused.status_code, refused.text)
    assert _status(strict, image_id) == "queued"


def _task(server: GlimpseServer, image_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tasks = httpx.get(f"{server.url}/v2/images/{image_id}/tasks", headers=MEMBER).json()["tasks"]
        if tasks and tasks[0]["status"] in ("success", "failure"):
            return dict(tasks[0])
        time.sleep(0.3)
    raise AssertionError(f"the import of {image_id} did not end")


def test_a_dripping_web_download_is_cut_off(files: FileServer, tmp_path: Path) -> None:
    conf = (
        STORES + f"[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports = {files.port}\n"
        "[egress]\nmin_rate = 2000\nmin_rate_window = 1\n"
    )
    server = GlimpseServer(tmp_path / "drip", extra_conf=conf).start()
    try:
        image_id = _create(server)
        assert _import(server, image_id, f"{files.url}/drip/small.raw").status_code == 202
        task = _task(server, image_id)
        assert task["status"] == "failure" and "bytes/s" in task["message"], task
        assert _status(server, image_id) == "queued"
        fine = _create(server)
        assert _import(server, fine, f"{files.url}/files/disk.raw").status_code == 202
        assert _task(server, fine)["status"] == "success"
    finally:
        server.stop()


def test_glance_download_trusts_only_the_operators_endpoint(tmp_path: Path) -> None:
    remote = GlimpseServer(tmp_path / "region-two").start()
    local = GlimpseServer(  # the default policy: loopback refused, ports 80 and 443 only
        tmp_path / "region-one",
        extra_conf="enabled_import_methods = glance-direct,web-download,glance-download\n"
        f"[glance_download_opts]\nregion_endpoints = RegionTwo:{remote.url}\n",
    ).start()
    try:
        source = _create(remote)
        put = httpx.put(f"{remote.url}/v2/images/{source}/file", content=DATA,
                        headers={**MEMBER, "Content-Type": "application/octet-stream"})  # fmt: skip
        assert put.status_code == 204
        image_id = _create(local)
        method = {"name": "glance-download", "glance_image_id": source, "glance_region": "RegionTwo"}
        started = httpx.post(f"{local.url}/v2/images/{image_id}/import", json={"method": method}, headers=MEMBER)
        assert started.status_code == 202, started.text
        assert _task(local, image_id)["status"] == "success"
        assert httpx.get(f"{local.url}/v2/images/{image_id}/file", headers=MEMBER).content == DATA
        # The endpoint is trusted for glance-download only: web-download cannot reach it.
        other = _create(local)
        refused = _import(local, other, f"{remote.url}/v2/images/{source}/file")
        assert refused.status_code == 400, refused.text
        bad_id = {**method, "glance_image_id": "../../v2/images"}
        assert httpx.post(f"{local.url}/v2/images/{other}/import", json={"method": bad_id},
                          headers=MEMBER).status_code == 400  # fmt: skip
    finally:
        local.stop()
        remote.stop()


def test_trusting_a_whole_host_still_never_reaches_the_service_itself(files: FileServer, tmp_path: Path) -> None:
    conf = STORES + "[egress]\nhttp_store_allowed_hosts = 127.0.0.1\n"  # the operator trusts all of loopback
    server = GlimpseServer(tmp_path / "trusting", extra_conf=conf).start()
    try:
        image_id = _create(server)
        refused = _locate(server, image_id, f"{server.url}/v2/images/{image_id}/file")
        assert refused.status_code == 400 and "own endpoint" in refused.text, refused.text
        assert _locate(server, image_id, f"{files.url}/files/small.raw").status_code == 202
    finally:
        server.stop()
