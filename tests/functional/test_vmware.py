"""Multi-store `glimpse serve` with a file store and a vmware store on vcsim, VMware's vCenter simulator
(tests/contract/vcsim.py): `openstack image create` with the real client, whole and ranged
downloads, copy-image both ways with `openstack image import`, `glimpse store migrate` into and out of the
datastores, a node killed -9 half-way through an upload that leaves nothing behind once it restarts, and a
vCenter that is down."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contract.fixtures import vcsim_server  # noqa: F401  (vcsim, once per run)
from tests.contract.servers import free_port
from tests.contract.vcsim import VcsimServer
from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.server import GlimpseServer

MIB = 1024 * 1024


def _conf(vcsim: VcsimServer, image_dir: str) -> str:
    return f"""enabled_backends = fast:file, ds:vmware

[glance_store]
default_backend = ds

[fast]
store_description = Local disks

[ds]
store_description = vSphere datastores
weight = 50
vmware_server_host = {vcsim.host}
vmware_server_username = {vcsim.user}
vmware_server_password = {vcsim.password}
vmware_datastores = DC0:LocalDS_0:100
vmware_datastores = DC0:LocalDS_1
vmware_store_image_dir = /{image_dir}
vmware_ca_file = {vcsim.ca_file}
vmware_api_retry_count = 2
vmware_task_poll_interval = 1
"""


@pytest.fixture
def vcsim(request: pytest.FixtureRequest) -> VcsimServer:
    return request.getfixturevalue("vcsim_server")  # type: ignore[no-any-return]


@pytest.fixture
def setup(vcsim: VcsimServer, tmp_path: Path) -> Iterator[tuple[GlimpseServer, str]]:
    image_dir = f"glimpse-{uuid.uuid4().hex[:12]}"
    server = GlimpseServer(tmp_path / "srv", extra_conf=_conf(vcsim, image_dir)).start()
    yield server, image_dir
    server.stop()


def _wait(condition: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _image(server: GlimpseServer, image_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/v2/images/{image_id}").json())


def _stores(server: GlimpseServer, image_id: str) -> list[str]:
    return sorted(filter(None, str(_image(server, image_id).get("stores", "")).split(",")))


def _held(vcsim: VcsimServer, image_dir: str) -> list[str]:
    """The images whose data the datastore's image folder holds (a copy's file is `<image id>.<copy tag>`)."""
    names = vcsim.files(image_dir)
    assert not [n for n in names if n.endswith(".partial")], names
    return sorted(n.split(".", 1)[0] for n in names)


def _upload(server: GlimpseServer, data: bytes, store: str) -> str:
    created = httpx.post(f"{server.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    image_id = str(created.json()["id"])
    put = httpx.put(
        f"{server.url}/v2/images/{image_id}/file",
        content=data,
        headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": store},
    )
    assert put.status_code == 204, put.text
    return image_id


def test_openstack_client_ranges_copy_image_and_migrate(
    setup: tuple[GlimpseServer, str], vcsim: VcsimServer, tmp_path: Path
) -> None:
    server, image_dir = setup
    log = server.log.read_text()
    assert "Glimpse does not know" not in log and "vmware_" not in log  # every [ds] option known and used
    detail = {s["id"]: s for s in httpx.get(f"{server.url}/v2/info/stores/detail").json()["stores"]}
    assert detail["ds"]["type"] == "vmware" and detail["ds"]["properties"]["image_dir"] == f"/{image_dir}"
    assert vcsim.password not in str(detail)

    # The real client uploads into the default store, the datastores (LocalDS_0, the heaviest), and reads it
    # back (its --store option is the Images v1 one it refuses).
    clients = Clients(server.url, tmp_path / "home")
    data = raw_disk_bytes(5 * MIB + 7)
    source = tmp_path / "disk.raw"
    source.write_bytes(data)
    created = clients.openstack_json(
        "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", str(source), "to-vsphere",
    )  # fmt: skip
    image_id = created["id"]
    assert created["status"] == "active"
    assert _stores(server, image_id) == ["ds"]
    assert _image(server, image_id)["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert (vcsim.datastore_dir() / image_dir / image_id).read_bytes() == data
    out = tmp_path / "saved.raw"
    clients.openstack("image", "save", "--file", str(out), image_id)
    assert out.read_bytes() == data
    for first, last in [(0, 0), (MIB - 3, 2 * MIB + 2), (5 * MIB, 5 * MIB + 6)]:
        ranged = httpx.get(f"{server.url}/v2/images/{image_id}/file", headers={"Range": f"bytes={first}-{last}"})
        assert ranged.status_code == 206 and ranged.content == data[first : last + 1]
    tail = httpx.get(f"{server.url}/v2/images/{image_id}/file", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == data[-100:]

    # copy-image from the datastore to the file store, then the datastore's copy dropped: the file copy serves.
    clients.openstack("image", "import", image_id, "--method", "copy-image", "--store", "fast")
    assert _wait(lambda: _stores(server, image_id) == ["ds", "fast"])
    assert httpx.delete(f"{server.url}/v2/stores/ds/{image_id}").status_code == 204
    assert vcsim.files(image_dir) == []
    assert httpx.get(f"{server.url}/v2/images/{image_id}/file").content == data
    # ... and back from the file store into the datastore, which then serves alone.
    clients.openstack("image", "import", image_id, "--method", "copy-image", "--store", "ds")
    assert _wait(lambda: _stores(server, image_id) == ["ds", "fast"])
    assert httpx.delete(f"{server.url}/v2/stores/fast/{image_id}").status_code == 204
    assert _held(vcsim, image_dir) == [image_id]
    assert httpx.get(f"{server.url}/v2/images/{image_id}/file").content == data

    # glimpse store migrate: file store -> datastores, checked and read back, then back again.
    contents = (b"", b"x", raw_disk_bytes(64 * 1024), raw_disk_bytes(3 * MIB + 1))
    payloads = {_upload(server, p, "fast"): p for p in contents}
    moved = server.command("store", "migrate", "--from", "fast", "--to", "ds", "--verify", "--delete-source")
    assert moved.returncode == 0 and " 0 failed" in moved.stdout, moved.stdout + moved.stderr
    assert _held(vcsim, image_dir) == sorted([image_id, *payloads])
    for moved_id, payload in payloads.items():
        assert _stores(server, moved_id) == ["ds"]
        assert httpx.get(f"{server.url}/v2/images/{moved_id}/file").content == payload
    verified = server.command("store", "verify", "--store", "ds")
    assert verified.returncode == 0 and "0 problem(s)" in verified.stdout, verified.stdout + verified.stderr
    back = server.command("store", "migrate", "--from", "ds", "--to", "fast", "--verify", "--delete-source")
    assert back.returncode == 0 and " 0 failed" in back.stdout, back.stdout + back.stderr
    assert _held(vcsim, image_dir) == []  # every image left the datastores, the first one too
    for moved_id, payload in [*payloads.items(), (image_id, data)]:
        assert _stores(server, moved_id) == ["fast"]
        assert httpx.get(f"{server.url}/v2/images/{moved_id}/file").content == payload

    # Deleting the images leaves the datastores' image folder empty.
    for gone in [image_id, *payloads]:
        assert httpx.delete(f"{server.url}/v2/images/{gone}").status_code == 204
    assert vcsim.files(image_dir) == [] and vcsim.files(image_dir, datastore="LocalDS_1") == []


def test_a_node_killed_mid_upload_leaves_nothing_after_recovery(
    setup: tuple[GlimpseServer, str], vcsim: VcsimServer
) -> None:
    server, image_dir = setup
    created = httpx.post(f"{server.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    image_id = str(created.json()["id"])
    declared = 64 * MIB
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Image-Meta-Store: ds\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n".encode()
        + b"k" * (4 * MIB)
    )  # the rest never comes
    try:
        assert _wait(lambda: _image(server, image_id)["status"] == "saving")
        partial = vcsim.datastore_dir() / image_dir
        assert _wait(lambda: [p for p in partial.glob(f"{image_id}.*.partial") if p.stat().st_size > 0] != [])
        server.kill()
    finally:
        sock.close()
    assert len(vcsim.files(image_dir)) == 1  # the dead node's partial file, on the datastore

    server.start()
    assert _image(server, image_id)["status"] == "queued"
    assert vcsim.files(image_dir) == []
    assert "interrupted upload" in server.log.read_text()
    put = httpx.put(
        f"{server.url}/v2/images/{image_id}/file",
        content=b"again",
        headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": "ds"},
    )
    assert put.status_code == 204
    assert vcsim.files(image_dir) == [image_id]
    assert httpx.get(f"{server.url}/v2/images/{image_id}/file").content == b"again"


def test_a_vcenter_that_is_down_is_a_503_not_a_failed_start(vcsim: VcsimServer, tmp_path: Path) -> None:
    conf = _conf(vcsim, "unreachable").replace(vcsim.host, f"127.0.0.1:{free_port()}")
    server = GlimpseServer(tmp_path / "srv", extra_conf=conf).start()  # recovery at start-up cannot reach it
    try:
        assert "partial uploads not looked for" in server.log.read_text()
        created = httpx.post(f"{server.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"})
        image_id = created.json()["id"]
        put = httpx.put(
            f"{server.url}/v2/images/{image_id}/file",
            content=b"data",
            headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": "ds"},
        )
        assert put.status_code == 503, put.text
        assert _image(server, image_id)["status"] == "queued"
        fine = _upload(server, b"local", "fast")  # the other store is not affected
        assert httpx.get(f"{server.url}/v2/images/{fine}/file").content == b"local"
    finally:
        server.stop()
