"""tus uploads across nodes: two `glimpse serve` over one PostgreSQL and one S3 store (moto_server). An upload cut
on one node resumes on the other; the node writing it killed with -9, the next PATCH takes over on the other node
once the dead one's claim goes stale; partial uploads sent to both nodes are joined; the expiry sweep runs."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus_client

from tests.contract.fixtures import s3_server  # noqa: F401  (a real S3-compatible server)
from tests.contract.leftovers import incomplete_uploads
from tests.contract.servers import ACCESS_KEY, SECRET_KEY, S3Server
from tests.disk_bytes import raw_disk_bytes
from tests.functional.databases import fresh_database
from tests.functional.server import GlimpseServer

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = {**TUS, "Content-Type": "application/offset+octet-stream"}
MIB = 1024 * 1024


def node_conf(s3: S3Server, bucket: str) -> str:
    return f"""upload_heartbeat_timeout = 5
task_stale_after = 4
resumable_upload_expiration = 0.002
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
) -> Iterator[tuple[list[GlimpseServer], S3Server, str]]:
    bucket = f"tus-{uuid.uuid4().hex[:10]}"
    root = tmp_path_factory.mktemp("tus-cluster")
    with fresh_database("postgresql") as url:
        nodes = [GlimpseServer(root / f"node{i}", url, extra_conf=node_conf(s3_server, bucket)) for i in range(2)]
        assert nodes[0].command("db", "sync").returncode == 0
        for node in nodes:
            node.start()
        try:
            yield nodes, s3_server, bucket
        finally:
            for node in nodes:
                node.stop()


def new_image(url: str) -> str:
    response = httpx.post(f"{url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def on(node: GlimpseServer, upload_url: str) -> str:
    """The same upload, asked of another node."""
    return node.url + upload_url[upload_url.index("/v2/") :]


def offset(url: str) -> int:
    response = httpx.head(url, headers=TUS, timeout=30)
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


def published_as(node: GlimpseServer, image_id: str, data: bytes) -> None:
    shown = httpx.get(f"{node.url}/v2/images/{image_id}", timeout=30).json()
    assert shown["status"] == "active"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert httpx.get(f"{node.url}/v2/images/{image_id}/file", timeout=60).content == data


def cut_patch(node: GlimpseServer, url: str, at: int, total: int, sent: bytes) -> None:
    with socket.create_connection(("127.0.0.1", node.port), timeout=30) as sock:
        path = url[url.index("/v2/") :]
        sock.sendall(
            f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {at}\r\n"
            f"Content-Type: application/offset+octet-stream\r\nContent-Length: {total}\r\n\r\n".encode()
            + sent
        )


def settled(url: str, at_least: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and offset(url) < at_least:
        time.sleep(0.1)
    return offset(url)


def test_cut_on_one_node_resumed_on_the_other_with_tuspy(
    cluster: tuple[list[GlimpseServer], S3Server, str], tmp_path: Path
) -> None:
    (a, b), _, _ = cluster
    image_id = new_image(a.url)
    data = raw_disk_bytes(13 * MIB + 11)  # several 5 MiB parts, and short ends staged between PATCHes
    created = httpx.post(f"{a.url}/v2/images/{image_id}/uploads", headers={**TUS, "Upload-Length": str(len(data))})
    assert created.status_code == 201
    url = created.headers["location"]
    cut_patch(a, url, 0, len(data), data[: 3 * MIB + 5])
    at = settled(url, 3 * MIB + 5)
    assert at == 3 * MIB + 5
    cut_patch(b, on(b, url), at, len(data) - at, data[at : at + 4 * MIB])
    at = settled(on(b, url), 7 * MIB + 5)
    assert at == 7 * MIB + 5
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    uploader = tus_client.TusClient(on(a, url)).uploader(file_path=str(path), url=on(a, url), chunk_size=2 * MIB)
    assert uploader.offset == at
    uploader.upload()
    published_as(b, image_id, data)


def test_the_writing_node_killed_the_next_patch_takes_over_on_the_other(
    cluster: tuple[list[GlimpseServer], S3Server, str], tmp_path: Path
) -> None:
    (a, b), _, _ = cluster
    image_id = new_image(a.url)
    data = raw_disk_bytes(6 * MIB)
    created = httpx.post(f"{a.url}/v2/images/{image_id}/uploads", headers={**TUS, "Upload-Length": str(len(data))})
    url = created.headers["location"]
    assert httpx.patch(url, content=data[:MIB], headers={**CHUNK, "Upload-Offset": "0"}).status_code == 204
    # A PATCH holds the upload on node a, which then dies with -9 in the middle of it.
    sock = socket.create_connection(("127.0.0.1", a.port), timeout=30)
    path = url[url.index("/v2/") :]
    sock.sendall(
        f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: {MIB}\r\n"
        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {5 * MIB}\r\n\r\n".encode()
        + data[MIB : 2 * MIB]
    )
    time.sleep(1)
    a.kill()
    sock.close()
    try:
        assert offset(on(b, url)) == MIB  # what the dead PATCH wrote never counted
        busy = httpx.patch(on(b, url), content=data[MIB:], headers={**CHUNK, "Upload-Offset": str(MIB)})
        assert busy.status_code == 409  # the dead node's claim is not stale yet
        deadline = time.monotonic() + 30
        while busy.status_code == 409 and time.monotonic() < deadline:
            time.sleep(1)
            busy = httpx.patch(on(b, url), content=data[MIB:], headers={**CHUNK, "Upload-Offset": str(MIB)})
        assert busy.status_code == 204, busy.text
        published_as(b, image_id, data)
    finally:
        a.start()


def test_partial_uploads_on_both_nodes_are_joined(cluster: tuple[list[GlimpseServer], S3Server, str]) -> None:
    (a, b), s3, bucket = cluster
    image_id = new_image(a.url)
    parts = [raw_disk_bytes(n) for n in (6 * MIB + 1, 2 * MIB, 7)]
    urls = []
    for node, part in zip((a, b, a), parts, strict=True):
        created = httpx.post(
            f"{node.url}/v2/images/{image_id}/uploads",
            headers={**TUS, "Upload-Length": str(len(part)), "Upload-Concat": "partial"},
        )
        assert created.status_code == 201, created.text
        urls.append(created.headers["location"])
        sent = httpx.patch(created.headers["location"], content=part, headers={**CHUNK, "Upload-Offset": "0"})
        assert sent.status_code == 204
    final = httpx.post(
        f"{b.url}/v2/images/{image_id}/uploads", headers={**TUS, "Upload-Concat": "final;" + " ".join(urls)}, timeout=60
    )
    assert final.status_code == 201, final.text
    published_as(a, image_id, b"".join(parts))
    client = s3.client()
    assert all(image_id not in key for key in incomplete_uploads(client, bucket))
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []) if image_id in o["Key"]]
    assert len(keys) == 1  # the joined object only: no part, tail or partial object left


def test_an_expired_upload_is_swept_by_a_node(cluster: tuple[list[GlimpseServer], S3Server, str]) -> None:
    (a, b), s3, bucket = cluster
    image_id = new_image(a.url)
    created = httpx.post(f"{a.url}/v2/images/{image_id}/uploads", headers={**TUS, "Upload-Length": str(8 * MIB)})
    url = created.headers["location"]
    assert httpx.patch(url, content=raw_disk_bytes(6 * MIB), headers={**CHUNK, "Upload-Offset": "0"}).status_code == 204
    deadline = time.monotonic() + 60  # expiry is 7.2 s here; the nodes sweep every second
    status = "saving"
    while status == "saving" and time.monotonic() < deadline:
        time.sleep(1)
        status = httpx.get(f"{b.url}/v2/images/{image_id}", timeout=30).json()["status"]
    assert status == "queued"
    assert httpx.head(on(b, url), headers=TUS).status_code == 404
    client = s3.client()
    assert all(image_id not in key for key in incomplete_uploads(client, bucket))
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []) if image_id in o["Key"]] == []
