"""Multi-store `glimpse serve` with a file store and an s3 store on a real S3-compatible server (moto_server):
uploads to each store with the real glance client and X-Image-Meta-Store, discovery, per-store delete, and
`glimpse store migrate` from file to s3 while a client keeps downloading, then `glimpse store verify`."""

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

from tests.contract.fixtures import s3_server, web_server  # noqa: F401  (real servers, once per run)
from tests.contract.servers import ACCESS_KEY, SECRET_KEY, S3Server, WebServer
from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.server import GlimpseServer

MIB = 1024 * 1024
MEMBER = {"X-Project-Id": "project-a", "X-Roles": "member,reader"}


def _conf(s3: S3Server, bucket: str) -> str:
    return f"""enabled_backends = local:file, objects:s3, web:http

[glance_store]
default_backend = local

[local]
store_description = Local disks
weight = 10

[objects]
store_description = S3 objects
weight = 100
s3_store_host = {s3.url}
s3_store_access_key = {ACCESS_KEY}
s3_store_secret_key = {SECRET_KEY}
s3_store_bucket = {bucket}
s3_store_create_bucket_on_put = true
s3_store_bucket_url_format = path
s3_store_large_object_size = 5
s3_store_large_object_chunk_size = 5

[web]
store_description = Web server

[egress]
http_store_allowed_hosts = 127.0.0.1
"""


@pytest.fixture(scope="module")
def multi(s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GlimpseServer, str]]:  # noqa: F811
    bucket = f"glimpse-{uuid.uuid4().hex[:12]}"
    srv = GlimpseServer(tmp_path_factory.mktemp("glimpse-multistore"), extra_conf=_conf(s3_server, bucket)).start()
    yield srv, bucket
    srv.stop()


@pytest.fixture
def api(multi: tuple[GlimpseServer, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=multi[0].url, timeout=60) as client:
        yield client


@pytest.fixture
def clients(multi: tuple[GlimpseServer, str], tmp_path: Path) -> Clients:
    return Clients(multi[0].url, tmp_path / "home")


def _create(api: httpx.Client, headers: dict[str, str] | None = None, **body: Any) -> httpx.Response:
    body = {"disk_format": "raw", "container_format": "bare", **body}
    response = api.post("/v2/images", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response


def _upload(api: httpx.Client, data: bytes, store: str | None = None, owner: dict[str, str] | None = None) -> str:
    image_id = str(_create(api, owner, name=f"img-{uuid.uuid4().hex[:6]}").json()["id"])
    headers = {"Content-Type": "application/octet-stream", **(owner or {})}
    if store:
        headers["X-Image-Meta-Store"] = store
    response = api.put(f"/v2/images/{image_id}/file", content=data, headers=headers)
    assert response.status_code == 204, response.text
    return image_id


def _table(output: str) -> dict[str, str]:
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("Property", "") and not line.startswith("+"):
            rows[cells[0]] = cells[1]
    return rows


def _objects(s3: S3Server, bucket: str) -> list[str]:
    return [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def test_stores_discovery(api: httpx.Client) -> None:
    stores = api.get("/v2/info/stores").json()["stores"]
    assert stores == [
        {"id": "local", "description": "Local disks", "default": "true"},
        {"id": "objects", "description": "S3 objects"},
        {"id": "web", "description": "Web server", "read-only": "true"},
    ]
    detail = api.get("/v2/info/stores/detail")
    assert detail.status_code == 200
    by_id = {s["id"]: s for s in detail.json()["stores"]}
    assert (by_id["objects"]["type"], by_id["objects"]["weight"]) == ("s3", 100)
    assert by_id["objects"]["properties"]["bucket"].startswith("glimpse-")
    assert "secret" not in detail.text.lower() or SECRET_KEY not in detail.text
    assert (by_id["local"]["type"], by_id["local"]["weight"]) == ("file", 10)
    assert api.get("/v2/info/stores/detail", headers=MEMBER).status_code == 403
    created = _create(api)
    assert created.headers["OpenStack-image-store-ids"] == "local,objects"


def test_glance_cli_uploads_to_each_store(
    clients: Clients,
    api: httpx.Client,
    multi: tuple[GlimpseServer, str],
    s3_server: S3Server,  # noqa: F811
    tmp_path: Path,
) -> None:
    for store, size in (("objects", 6 * MIB + 7), ("local", 1 * MIB + 3)):  # multipart for s3
        data = raw_disk_bytes(size)
        source = tmp_path / f"{store}.img"
        source.write_bytes(data)
        created = _table(
            clients.glance(
                "image-create", "--name", f"cli-{store}", "--disk-format", "raw", "--container-format", "bare",
                "--store", store, "--file", str(source),
            ).stdout
        )  # fmt: skip
        image_id = created["id"]
        assert created["status"] == "active"
        shown = api.get(f"/v2/images/{image_id}").json()
        assert shown["stores"] == store
        assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
        assert (image_id in _objects(s3_server, multi[1])) == (store == "objects")
        target = tmp_path / f"{store}.out"
        clients.glance("image-download", "--file", str(target), image_id)
        assert target.read_bytes() == data
        ranged = api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206 and ranged.content == data[100:200]
    bad = clients.glance("image-create", "--disk-format", "raw", "--container-format", "bare", "--store", "nowhere",
                         "--file", str(source), check=False)  # fmt: skip
    assert bad.returncode != 0


def test_header_store_choice_and_unknown_store(api: httpx.Client) -> None:
    image_id = _upload(api, b"to s3", "objects")
    assert api.get(f"/v2/images/{image_id}").json()["stores"] == "objects"
    assert api.get(f"/v2/images/{image_id}/file").content == b"to s3"
    default = _upload(api, b"to the default")
    assert api.get(f"/v2/images/{default}").json()["stores"] == "local"
    other = _create(api).json()["id"]
    response = api.put(
        f"/v2/images/{other}/file",
        content=b"x",
        headers={"Content-Type": "application/octet-stream", "X-Image-Meta-Store": "nowhere"},
    )
    assert response.status_code == 400
    assert api.get(f"/v2/images/{other}").json()["status"] == "queued"


def test_delete_one_store_copy(api: httpx.Client, multi: tuple[GlimpseServer, str]) -> None:
    server, _ = multi
    image_id = _upload(api, b"in two stores", "local", owner=MEMBER)  # the owner may not drop a copy: admin only
    # copy it to s3 without removing it from the file store
    copied = server.command("store", "migrate", "--from", "local", "--to", "objects")
    assert copied.returncode == 0, copied.stdout + copied.stderr
    assert api.get(f"/v2/images/{image_id}").json()["stores"] == "local,objects"
    assert api.delete(f"/v2/stores/local/{image_id}", headers=MEMBER).status_code == 403
    assert api.delete(f"/v2/stores/nowhere/{image_id}").status_code == 409
    assert api.delete(f"/v2/stores/local/{image_id}").status_code == 204
    assert api.get(f"/v2/images/{image_id}").json()["stores"] == "objects"
    assert api.delete(f"/v2/stores/local/{image_id}").status_code == 404
    last = api.delete(f"/v2/stores/objects/{image_id}")
    assert last.status_code == 409, last.text
    assert api.get(f"/v2/images/{image_id}/file").content == b"in two stores"


def test_migrate_while_downloading_then_verify(
    api: httpx.Client,
    multi: tuple[GlimpseServer, str],
    s3_server: S3Server,  # noqa: F811
) -> None:
    server, bucket = multi
    images = {_upload(api, data, "local"): hashlib.md5(data).hexdigest() for data in _payloads()}
    failures: list[str] = []
    downloads = 0
    stop = threading.Event()

    def keep_downloading() -> None:
        nonlocal downloads
        with httpx.Client(base_url=server.url, timeout=60) as client:
            deadline = time.monotonic() + 300
            while not stop.is_set() and time.monotonic() < deadline:
                for image_id, md5 in images.items():
                    response = client.get(f"/v2/images/{image_id}/file")
                    if response.status_code != 200 or hashlib.md5(response.content).hexdigest() != md5:
                        failures.append(f"{image_id}: {response.status_code}")
                    downloads += 1

    reader = threading.Thread(target=keep_downloading)
    reader.start()
    try:
        time.sleep(0.5)
        migrated = server.command(
            "store", "migrate", "--from", "local", "--to", "objects", "--verify", "--delete-source"
        )
        time.sleep(0.5)
    finally:
        stop.set()
        reader.join(60)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "failed" in migrated.stdout and " 0 failed" in migrated.stdout
    assert failures == []
    assert downloads > len(images)
    for image_id, md5 in images.items():
        shown = api.get(f"/v2/images/{image_id}").json()
        assert shown["stores"] == "objects"
        assert hashlib.md5(api.get(f"/v2/images/{image_id}/file").content).hexdigest() == md5
    assert set(images) <= set(_objects(s3_server, bucket))
    assert not set(images) & {p.name for p in (server.data_dir / "images" / "local").iterdir()}

    rerun = server.command("store", "migrate", "--from", "local", "--to", "objects")
    assert rerun.returncode == 0 and " 0 copied" in rerun.stdout, rerun.stdout
    verified = server.command("store", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "0 problem(s)" in verified.stdout

    broken = next(iter(images))
    s3_server.client().delete_object(Bucket=bucket, Key=broken)
    found = server.command("store", "verify", "--store", "objects")
    assert found.returncode == 1, found.stdout
    assert broken in found.stdout and "missing" in found.stdout


def test_image_registered_by_http_location(
    api: httpx.Client,
    multi: tuple[GlimpseServer, str],
    web_server: WebServer,  # noqa: F811
) -> None:
    data = raw_disk_bytes(3 * MIB + 9)
    url = web_server.publish(f"{uuid.uuid4().hex}.img", data)
    image_id = _create(api, name="from the web").json()["id"]
    bad = api.post(
        f"/v2/images/{image_id}/locations",
        json={"url": url, "validation_data": {"os_hash_algo": "sha256", "os_hash_value": "0" * 64}},
    )
    assert bad.status_code == 400, bad.text
    assert api.post(f"/v2/images/{image_id}/locations", json={"url": "file:///etc/passwd"}).status_code == 400
    assert api.post(f"/v2/images/{image_id}/locations", json={"url": url + ".missing"}).status_code == 400
    good = api.post(
        f"/v2/images/{image_id}/locations",
        json={
            "url": url,
            "validation_data": {"os_hash_algo": "sha256", "os_hash_value": hashlib.sha256(data).hexdigest()},
        },
    )
    assert good.status_code == 202, good.text
    shown = api.get(f"/v2/images/{image_id}").json()
    assert (shown["status"], shown["stores"], shown["size"]) == ("active", "web", len(data))
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert api.get(f"/v2/images/{image_id}/file").content == data
    ranged = api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=-10"})
    assert ranged.status_code == 206 and ranged.content == data[-10:]
    assert api.post(f"/v2/images/{image_id}/locations", json={"url": url}).status_code == 409  # no longer queued
    upload = api.put(f"/v2/images/{image_id}/file", content=b"x", headers={"Content-Type": "application/octet-stream"})
    assert upload.status_code == 409
    # The data can be moved off the web server into a store Glimpse manages.
    server, _ = multi
    moved = server.command("store", "migrate", "--from", "web", "--to", "objects", "--verify", "--delete-source")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert api.get(f"/v2/images/{image_id}").json()["stores"] == "objects"
    assert api.get(f"/v2/images/{image_id}/file").content == data
    assert api.delete(f"/v2/images/{image_id}").status_code == 204


def _payloads() -> list[bytes]:
    return [raw_disk_bytes(n) for n in (0, 1, 64 * 1024, 2 * MIB + 5, 7 * MIB + 11)]
