"""Three glimpse serve nodes over one PostgreSQL and one S3 store, behind HAProxy; one node dies mid-traffic."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contract.fixtures import s3_server  # noqa: F401  (a real S3-compatible server)
from tests.contract.servers import ACCESS_KEY, SECRET_KEY, S3Server
from tests.disk_bytes import raw_disk_bytes
from tests.functional.databases import fresh_database
from tests.functional.loadbalancer import HAProxy
from tests.functional.server import GlimpseServer

OCTETS = {"Content-Type": "application/octet-stream"}
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


def node_conf(s3: S3Server, bucket: str, staging: Path) -> str:
    return f"""upload_heartbeat_timeout = 6
node_staging_uri = file://{staging}
enabled_backends = objects:s3
[glance_store]
default_backend = objects
[objects]
s3_store_host = {s3.url}
s3_store_access_key = {ACCESS_KEY}
s3_store_secret_key = {SECRET_KEY}
s3_store_bucket = {bucket}
s3_store_create_bucket_on_put = true
s3_store_bucket_url_format = path
s3_store_large_object_size = 5
s3_store_large_object_chunk_size = 5
"""


@pytest.fixture(scope="module")
def cluster(
    s3_server: S3Server,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[GlimpseServer], HAProxy, str]]:
    bucket = f"scale-{uuid.uuid4().hex[:10]}"
    root = tmp_path_factory.mktemp("cluster")
    with fresh_database("postgresql") as url:
        conf = node_conf(s3_server, bucket, root / "staging")
        nodes = [GlimpseServer(root / f"node{i}", url, extra_conf=conf) for i in range(3)]
        assert nodes[0].command("db", "sync").returncode == 0
        for node in nodes:
            node.start()
        lb = HAProxy(root, [n.url for n in nodes]).start()
        try:
            yield nodes, lb, bucket
        finally:
            lb.stop()
            for node in nodes:
                node.stop()


def _new(url: str) -> str:
    response = httpx.post(f"{url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_data_and_imports_cross_nodes(cluster: tuple[list[GlimpseServer], HAProxy, str]) -> None:
    nodes, _, _ = cluster
    data = raw_disk_bytes(7 * 1024 * 1024)  # more than one 5 MiB part: a multipart upload
    image_id = _new(nodes[0].url)
    assert (
        httpx.put(f"{nodes[0].url}/v2/images/{image_id}/file", content=data, headers=OCTETS, timeout=60).status_code
        == 204
    )
    assert httpx.get(f"{nodes[1].url}/v2/images/{image_id}/file", timeout=60).content == data
    assert httpx.get(f"{nodes[2].url}/v2/images/{image_id}/file", headers={"Range": "bytes=5-9"}).content == data[5:10]

    staged = _new(nodes[1].url)
    assert (
        httpx.put(f"{nodes[1].url}/v2/images/{staged}/stage", content=data, headers=OCTETS, timeout=60).status_code
        == 204
    )
    started = httpx.post(f"{nodes[2].url}/v2/images/{staged}/import", json={"method": {"name": "glance-direct"}})
    assert started.status_code == 202
    deadline = time.monotonic() + 60
    while httpx.get(f"{nodes[0].url}/v2/images/{staged}").json()["status"] != "active":
        assert time.monotonic() < deadline, "the import did not finish"
        time.sleep(0.2)
    assert httpx.get(f"{nodes[0].url}/v2/images/{staged}").json()["checksum"] == hashlib.md5(data).hexdigest()


def test_races_between_nodes(cluster: tuple[list[GlimpseServer], HAProxy, str]) -> None:
    nodes, _, _ = cluster
    image_id = _new(nodes[0].url)
    results: list[int] = []

    def upload(node: GlimpseServer, fill: bytes) -> None:
        body = (fill * 1024 * 1024 for _ in range(6))
        results.append(
            httpx.put(f"{node.url}/v2/images/{image_id}/file", content=body, headers=OCTETS, timeout=60).status_code
        )

    threads = [threading.Thread(target=upload, args=(nodes[i], bytes([65 + i]))) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [204, 409], results  # exactly one upload wins

    # Concurrent JSON-patches on three nodes: each is applied whole or refused with 409, none is lost.
    target = _new(nodes[0].url)
    outcomes: dict[str, int] = {}

    def patch(i: int) -> None:
        node = nodes[i % 3]
        ops = [{"op": "add", "path": f"/key{i}", "value": str(i)}]
        outcomes[f"key{i}"] = httpx.patch(
            f"{node.url}/v2/images/{target}", json=ops, headers=PATCH, timeout=30
        ).status_code

    threads = [threading.Thread(target=patch, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(outcomes.values()) <= {200, 409}
    final = httpx.get(f"{nodes[1].url}/v2/images/{target}").json()
    for key, status in outcomes.items():
        assert (key in final) == (status == 200), (key, status)


def test_killing_a_node_during_traffic(cluster: tuple[list[GlimpseServer], HAProxy, str], s3_server: S3Server) -> None:  # noqa: F811
    nodes, lb, bucket = cluster
    stop = threading.Event()
    done: list[str] = []
    failures: list[str] = []

    def client(n: int) -> None:
        with httpx.Client(base_url=lb.url, timeout=30) as http:
            while not stop.is_set():
                data = raw_disk_bytes(6 * 1024 * 1024 + n)
                try:
                    image_id = _retry(
                        lambda: http.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}), 201
                    ).json()["id"]
                    _upload_until_active(http, image_id, data)
                    body = _retry(lambda i=image_id: http.get(f"/v2/images/{i}/file"), 200).content
                    if body != data:
                        failures.append(f"{image_id}: downloaded bytes differ")
                    done.append(image_id)
                except Exception as exc:  # a client that gives up is a failure of the cluster
                    failures.append(repr(exc))
                    return

    workers = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    time.sleep(4)
    nodes[1].kill()  # mid-traffic, without warning
    time.sleep(8)
    stop.set()
    for w in workers:
        w.join(120)
    assert failures == []
    assert len(done) >= 3
    survivor = nodes[0].url
    # No image is left half-made, and the store holds exactly the data of active images.
    deadline = time.monotonic() + 40
    while True:
        stuck = [i["id"] for s in ("saving", "importing", "uploading")
                 for i in httpx.get(f"{survivor}/v2/images?status={s}&limit=1000").json()["images"]]  # fmt: skip
        if not stuck or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert stuck == []
    s3 = s3_server.client()
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    active = {i["id"] for i in httpx.get(f"{survivor}/v2/images?status=active&limit=1000").json()["images"]}
    # One object per piece of data (<id> or <id>.<attempt>), each an active image's: nothing a killed upload left.
    # Images with identical data share one object (deduplication), so some active images have none of their own.
    owners = [k.split(".")[0] for k in keys]
    assert len(owners) == len(set(owners)) and set(owners) <= active
    assert set(done) <= active
    nodes[1].start()  # back for the next tests


def _retry(call: Any, expected: int, attempts: int = 20) -> httpx.Response:
    last: object = None
    for _ in range(attempts):
        try:
            response = call()
            if response.status_code == expected:
                return response
            last = response.status_code
        except httpx.TransportError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"gave up after {attempts} attempts: {last}")


def _upload_until_active(http: httpx.Client, image_id: str, data: bytes, budget: float = 60) -> None:
    """What a careful client does: upload; if cut off, look at the image and upload again when queued."""
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        try:
            response = http.put(f"/v2/images/{image_id}/file", content=data, headers=OCTETS)
            if response.status_code == 204:
                return
        except httpx.TransportError:
            pass
        status = _retry(lambda: http.get(f"/v2/images/{image_id}"), 200).json()["status"]
        if status == "active":
            return
        time.sleep(0.5)  # saving on a dead node: the survivors put it back to queued within seconds
    raise AssertionError(f"image {image_id} never became active")
