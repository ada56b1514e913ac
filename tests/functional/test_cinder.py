"""Multi-store `glimpse serve` with a file store and a cinder store on a real Cinder (tests/contract/cinder.py:
cinder-api, -scheduler and -volume with the RBD driver on the test Ceph, the test Keystone): `openstack image
create` into the cinder store (the default), download whole and ranged, copy-image both ways, `glimpse store
migrate` into and out of Cinder, and a node killed -9 mid-upload whose volume is gone once it restarts."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contract.cinder import CinderServices
from tests.contract.fixtures import ceph_cluster, cinder_services  # noqa: F401  (real servers, once per run)
from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.server import GlimpseServer
from tests.keystone.fixtures import keystone_projects, keystone_server  # noqa: F401  (cinder's Keystone)

MIB = 1024 * 1024


def _conf(cinder: CinderServices) -> str:
    return f"""enabled_backends = fast:file, vol:cinder

[glance_store]
default_backend = vol

[fast]
store_description = Local disks

[vol]
store_description = Cinder volumes
cinder_store_auth_address = {cinder.keystone.url}
cinder_store_user_name = {cinder.user}
cinder_store_password = {cinder.password}
cinder_store_project_name = {cinder.project}
cinder_os_region_name = {cinder.keystone.region}
cinder_catalog_info = volumev3::publicURL
cinder_state_transition_timeout = 120
cinder_http_retries = 1
"""


@pytest.fixture(scope="module")
def server(cinder_services: CinderServices, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:  # noqa: F811
    srv = GlimpseServer(tmp_path_factory.mktemp("glimpse-cinder"), extra_conf=_conf(cinder_services)).start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server: GlimpseServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=120) as client:
        yield client


def _volumes(cinder: CinderServices, image_id: str) -> list[Any]:
    return [v for v in cinder.client().volumes.list() if (v.metadata or {}).get("glance_image_id") == image_id]


def _wait_for(condition: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return False


def _stores(api: httpx.Client, image_id: str) -> set[str]:
    return set(filter(None, api.get(f"/v2/images/{image_id}").json()["stores"].split(",")))


def _upload(api: httpx.Client, data: bytes, store: str) -> str:
    response = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare", "name": "x"})
    image_id = str(response.json()["id"])
    put = api.put(f"/v2/images/{image_id}/file", content=data,
                  headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store})  # fmt: skip
    assert put.status_code == 204, put.text
    return image_id


def test_the_store_is_configured_and_listed(
    server: GlimpseServer,
    api: httpx.Client,
    cinder_services: CinderServices,  # noqa: F811
) -> None:
    log = server.log.read_text()
    assert "does not know" not in log and "no effect" not in log  # every option of [vol] is read
    detail = {s["id"]: s for s in api.get("/v2/info/stores/detail").json()["stores"]}
    assert detail["vol"]["type"] == "cinder"
    assert detail["vol"]["properties"]["project"] == "service"
    assert cinder_services.password not in str(detail)


def test_openstack_image_create_into_cinder_download_and_ranges(
    server: GlimpseServer,
    api: httpx.Client,
    cinder_services: CinderServices,  # noqa: F811
    tmp_path: Path,
) -> None:
    clients = Clients(server.url, tmp_path / "home")
    data = raw_disk_bytes(9 * MIB + 321)
    source = tmp_path / "disk.raw"
    source.write_bytes(data)
    created = clients.openstack_json("image", "create", "--disk-format", "raw", "--container-format", "bare",
                                     "--file", str(source), "to-cinder")  # fmt: skip
    image_id = created["id"]
    shown = api.get(f"/v2/images/{image_id}").json()
    assert (shown["status"], shown["stores"], shown["size"]) == ("active", "vol", len(data))
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    [volume] = _volumes(cinder_services, image_id)
    assert volume.name == f"image-{image_id}" and volume.status == "available"
    assert volume.metadata["image_size"] == str(len(data))

    out = tmp_path / "disk.out"
    clients.openstack("image", "save", "--file", str(out), image_id)
    assert out.read_bytes() == data
    for first, last in ((0, 0), (4 * MIB - 3, 4 * MIB + 3), (len(data) - 10, len(data) - 1)):
        ranged = api.get(f"/v2/images/{image_id}/file", headers={"Range": f"bytes={first}-{last}"})
        assert ranged.status_code == 206 and ranged.content == data[first : last + 1]
    # Every reader detaches (just after its last byte is sent).
    assert _wait_for(lambda: cinder_services.client().volumes.get(volume.id).status == "available", 30)

    clients.openstack("image", "delete", image_id)
    assert _wait_for(lambda: _volumes(cinder_services, image_id) == [])


def test_copy_image_between_file_and_cinder(api: httpx.Client, cinder_services: CinderServices) -> None:  # noqa: F811
    data = raw_disk_bytes(2 * MIB + 1)
    to_cinder = _upload(api, data, "fast")
    response = api.post(f"/v2/images/{to_cinder}/import", json={"method": {"name": "copy-image"}, "stores": ["vol"]})
    assert response.status_code == 202, response.text
    assert _wait_for(lambda: _stores(api, to_cinder) == {"fast", "vol"}), api.get(f"/v2/images/{to_cinder}").text
    assert len(_volumes(cinder_services, to_cinder)) == 1
    assert api.delete(f"/v2/stores/fast/{to_cinder}").status_code == 204
    assert api.get(f"/v2/images/{to_cinder}/file").content == data  # now read from Cinder

    from_cinder = _upload(api, data[::-1], "vol")
    response = api.post(f"/v2/images/{from_cinder}/import", json={"method": {"name": "copy-image"}, "stores": ["fast"]})
    assert response.status_code == 202, response.text
    assert _wait_for(lambda: _stores(api, from_cinder) == {"fast", "vol"})
    assert api.delete(f"/v2/stores/vol/{from_cinder}").status_code == 204
    assert _volumes(cinder_services, from_cinder) == []
    assert api.get(f"/v2/images/{from_cinder}/file").content == data[::-1]

    for image_id in (to_cinder, from_cinder):
        assert api.delete(f"/v2/images/{image_id}").status_code == 204
    assert _volumes(cinder_services, to_cinder) == []


def test_store_migrate_into_and_out_of_cinder(
    server: GlimpseServer,
    api: httpx.Client,
    cinder_services: CinderServices,  # noqa: F811
) -> None:
    payloads = {_upload(api, payload, "fast"): payload for payload in (b"", b"a", raw_disk_bytes(5 * MIB + 7))}
    moved = server.command("store", "migrate", "--from", "fast", "--to", "vol", "--verify", "--delete-source")
    assert moved.returncode == 0 and " 0 failed" in moved.stdout, moved.stdout + moved.stderr
    for image_id, payload in payloads.items():
        assert _stores(api, image_id) == {"vol"}  # the empty one too: a 1 GiB volume whose image_size is 0
        assert api.get(f"/v2/images/{image_id}/file").content == payload
        [volume] = _volumes(cinder_services, image_id)
        assert volume.metadata["image_size"] == str(len(payload))

    back = server.command("store", "migrate", "--from", "vol", "--to", "fast", "--verify", "--delete-source")
    assert back.returncode == 0 and " 0 failed" in back.stdout, back.stdout + back.stderr
    for image_id, payload in payloads.items():
        assert _stores(api, image_id) == {"fast"}
        assert api.get(f"/v2/images/{image_id}/file").content == payload
        assert _volumes(cinder_services, image_id) == []
        assert api.delete(f"/v2/images/{image_id}").status_code == 204


def test_node_killed_mid_upload_leaves_no_volume(
    server: GlimpseServer,
    api: httpx.Client,
    cinder_services: CinderServices,  # noqa: F811
) -> None:
    response = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    image_id = str(response.json()["id"])
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Image-Meta-Store: vol\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {50 * MIB}\r\n\r\n".encode()
        + raw_disk_bytes(6 * MIB)
    )
    try:
        # The node is writing: its volume exists and is attached to it.
        assert _wait_for(lambda: [v.status for v in _volumes(cinder_services, image_id)] == ["in-use"], 90)
        server.kill()
    finally:
        sock.close()
    assert [v.status for v in _volumes(cinder_services, image_id)] == ["in-use"]  # left behind by the dead node
    server.start()  # recovery: the image goes back to queued, the volume's attachment and the volume are removed
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "queued"
    assert _volumes(cinder_services, image_id) == []
    # The image can be uploaded again, into Cinder.
    put = api.put(f"/v2/images/{image_id}/file", content=b"again",
                  headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": "vol"})  # fmt: skip
    assert put.status_code == 204, put.text
    assert api.get(f"/v2/images/{image_id}/file").content == b"again"
    assert api.delete(f"/v2/images/{image_id}").status_code == 204
