"""Multi-store `glimpse serve` with a file store and an rbd store on a real one-node Ceph cluster
(tests/contract/ceph.py): uploads to the rbd store with X-Image-Meta-Store, downloads (whole and ranged),
the RBD image and its protected snapshot seen with the `rbd` CLI, copy-image from file to rbd, per-store
delete and image delete."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.contract.ceph import CephCluster
from tests.contract.fixtures import ceph_cluster  # noqa: F401  (a real Ceph, once per run)
from tests.disk_bytes import raw_disk_bytes
from tests.functional.server import GlimpseServer

MIB = 1024 * 1024


def _conf(cluster: CephCluster) -> str:
    return f"""enabled_backends = local:file, fast:rbd
show_multiple_locations = true

[glance_store]
default_backend = local

[local]
store_description = Local disks

[fast]
store_description = Ceph RBD
weight = 100
rbd_store_pool = {cluster.pool}
rbd_store_user = {cluster.user}
rbd_store_ceph_conf = {cluster.conf}
rbd_store_chunk_size = 4
rados_connect_timeout = 10
"""


@pytest.fixture(scope="module")
def server(ceph_cluster: CephCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:  # noqa: F811
    srv = GlimpseServer(tmp_path_factory.mktemp("glimpse-rbd"), extra_conf=_conf(ceph_cluster)).start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server: GlimpseServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def _create(api: httpx.Client, **body: Any) -> str:
    response = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare", **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _upload(api: httpx.Client, data: bytes, store: str | None) -> str:
    image_id = _create(api, name=f"img-{uuid.uuid4().hex[:6]}")
    headers = {"Content-Type": "application/octet-stream"}
    if store:
        headers["X-Image-Meta-Store"] = store
    response = api.put(f"/v2/images/{image_id}/file", content=data, headers=headers)
    assert response.status_code == 204, response.text
    return image_id


def _rbd_images(cluster: CephCluster) -> list[str]:
    return list(json.loads(cluster.rbd("ls", cluster.pool, "--format", "json")))


def _snaps(cluster: CephCluster, image_id: str) -> list[tuple[str, str]]:
    snaps = json.loads(cluster.rbd("snap", "ls", f"{cluster.pool}/{image_id}", "--format", "json"))
    return [(s["name"], s["protected"]) for s in snaps]


def test_no_unknown_options_and_the_store_is_listed(server: GlimpseServer, api: httpx.Client) -> None:
    assert "does not know" not in server.log.read_text()
    stores = api.get("/v2/info/stores").json()["stores"]
    assert stores == [
        {"id": "local", "description": "Local disks", "default": "true"},
        {"id": "fast", "description": "Ceph RBD"},
    ]
    detail = {s["id"]: s for s in api.get("/v2/info/stores/detail").json()["stores"]}
    assert detail["fast"]["type"] == "rbd"
    assert detail["fast"]["properties"]["pool"] == "images"
    assert detail["fast"]["properties"]["chunk_size"] == 4


def test_upload_download_and_delete_on_rbd(api: httpx.Client, ceph_cluster: CephCluster) -> None:  # noqa: F811
    data = raw_disk_bytes(9 * MIB + 123)  # three 4 MiB chunks, the last one short
    image_id = _upload(api, data, "fast")
    shown = api.get(f"/v2/images/{image_id}").json()
    assert (shown["status"], shown["stores"], shown["size"]) == ("active", "fast", len(data))
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert [loc["url"] for loc in shown["locations"]] == [f"rbd://{ceph_cluster.fsid}/images/{image_id}/snap"]

    # What Nova and Cinder look for: the image named by its id, with a protected snapshot `snap`.
    assert image_id in _rbd_images(ceph_cluster)
    assert _snaps(ceph_cluster, image_id) == [("snap", "true")]

    download = api.get(f"/v2/images/{image_id}/file")
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["Content-MD5"]
    ranged = api.get(f"/v2/images/{image_id}/file", headers={"Range": f"bytes={4 * MIB - 10}-{4 * MIB + 9}"})
    assert ranged.status_code == 206 and ranged.content == data[4 * MIB - 10 : 4 * MIB + 10]

    assert api.delete(f"/v2/images/{image_id}").status_code == 204
    assert image_id not in _rbd_images(ceph_cluster)
    assert not [n for n in _rbd_images(ceph_cluster) if n.startswith(image_id)]


def test_copy_image_from_file_to_rbd_then_drop_the_rbd_copy(api: httpx.Client, ceph_cluster: CephCluster) -> None:  # noqa: F811
    data = raw_disk_bytes(2 * MIB + 1)
    image_id = _upload(api, data, None)  # the default store: local
    assert api.get(f"/v2/images/{image_id}").json()["stores"] == "local"
    response = api.post(f"/v2/images/{image_id}/import", json={"method": {"name": "copy-image"}, "stores": ["fast"]})
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shown = api.get(f"/v2/images/{image_id}").json()
        if set(shown["stores"].split(",")) == {"local", "fast"}:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"copy-image did not reach the rbd store: {shown}")
    copies = [n for n in _rbd_images(ceph_cluster) if n.split(".")[0] == image_id]  # <id>.<task>.<claim>
    assert len(copies) == 1
    assert _snaps(ceph_cluster, copies[0]) == [("snap", "true")]
    # The heavier store (rbd) is read first.
    assert api.get(f"/v2/images/{image_id}/file").content == data

    assert api.delete(f"/v2/stores/fast/{image_id}").status_code == 204
    assert copies[0] not in _rbd_images(ceph_cluster)
    assert api.get(f"/v2/images/{image_id}").json()["stores"] == "local"
    assert api.get(f"/v2/images/{image_id}/file").content == data
    assert api.delete(f"/v2/images/{image_id}").status_code == 204


def test_deleting_an_image_with_clones_never_breaks_the_clone(
    server: GlimpseServer,
    api: httpx.Client,
    ceph_cluster: CephCluster,  # noqa: F811
) -> None:
    data = raw_disk_bytes(MIB)
    image_id = _upload(api, data, "fast")
    child = f"volume-{image_id[:8]}"
    ceph_cluster.rbd("clone", f"images/{image_id}@snap", f"images/{child}")  # as Cinder makes a volume
    try:
        # As Glance: an image a volume was cloned from cannot be deleted (409, saying why); the image, its RBD
        # image and its protected snapshot all stay.
        refused = api.delete(f"/v2/images/{image_id}", headers={"Accept": "application/json"})
        assert refused.status_code == 409
        assert f"images/{image_id} is in use: its snapshot snap has clones (images/{child})" in refused.text
        assert api.get(f"/v2/images/{image_id}").json()["status"] == "active"
        assert image_id in _rbd_images(ceph_cluster)
        assert _snaps(ceph_cluster, image_id) == [("snap", "true")]
        exported = ceph_cluster.dir / f"{child}.raw"
        ceph_cluster.rbd("export", "--no-progress", f"images/{child}", str(exported))
        assert exported.read_bytes() == data
        exported.unlink()
    finally:
        ceph_cluster.rbd("rm", "--no-progress", f"images/{child}")
        ceph_cluster.rbd("snap", "unprotect", f"images/{image_id}@snap")
        ceph_cluster.rbd("snap", "purge", "--no-progress", f"images/{image_id}")
        ceph_cluster.rbd("rm", "--no-progress", f"images/{image_id}")
