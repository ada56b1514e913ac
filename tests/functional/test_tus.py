"""Resumable uploads (tus 1.0) against a real `glimpse serve`, driven by the real tus client tuspy and by raw HTTP
where a test plays a hostile or broken client."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus_client

from tests.functional.server import GlimpseServer

TUS = {"Tus-Resumable": "1.0.0"}
CHUNK = {**TUS, "Content-Type": "application/offset+octet-stream"}
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def glimpse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    server = GlimpseServer(tmp_path_factory.mktemp("tus"), extra_conf="upload_heartbeat_timeout = 5\n").start()
    yield server
    server.stop()


def new_image(server: GlimpseServer, disk_format: str = "raw", **headers: str) -> str:
    body = {"disk_format": disk_format, "container_format": "bare", "name": "tus"}
    response = httpx.post(f"{server.url}/v2/images", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def image(server: GlimpseServer, image_id: str, **headers: str) -> dict[str, object]:
    response = httpx.get(f"{server.url}/v2/images/{image_id}", headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    shown: dict[str, object] = response.json()
    return shown


def create(server: GlimpseServer, image_id: str, length: int, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v2/images/{image_id}/uploads",
        headers={**TUS, "Upload-Length": str(length), **headers},
        timeout=30,
    )


def created(server: GlimpseServer, image_id: str, length: int, **headers: str) -> str:
    response = create(server, image_id, length, **headers)
    assert response.status_code == 201, response.text
    return response.headers["location"]


def offset(url: str) -> int:
    response = httpx.head(url, headers=TUS, timeout=30)
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


def send(url: str, at: int, data: bytes, **headers: str) -> httpx.Response:
    return httpx.patch(url, content=data, headers={**CHUNK, "Upload-Offset": str(at), **headers}, timeout=60)


def published_as(server: GlimpseServer, image_id: str, data: bytes) -> None:
    shown = image(server, image_id)
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert shown["virtual_size"] == len(data)
    assert httpx.get(f"{server.url}/v2/images/{image_id}/file", timeout=60).content == data


def test_discovery_says_what_the_server_speaks(glimpse: GlimpseServer) -> None:
    image_id = new_image(glimpse)
    response = httpx.options(f"{glimpse.url}/v2/images/{image_id}/uploads", timeout=30)
    assert response.status_code == 204
    assert response.headers["tus-resumable"] == "1.0.0"
    assert response.headers["tus-version"] == "1.0.0"
    assert set(response.headers["tus-extension"].split(",")) == {
        "creation", "checksum", "termination", "expiration", "concatenation",
    }  # fmt: skip
    assert "sha1" in response.headers["tus-checksum-algorithm"].split(",")
    assert int(response.headers["tus-max-size"]) > 0


def test_tuspy_uploads_in_chunks_with_checksums_and_the_image_is_published(
    glimpse: GlimpseServer, tmp_path: Path
) -> None:
    image_id = new_image(glimpse)
    data = os.urandom(3 * MIB + 17)
    path = tmp_path / "disk.raw"
    path.write_bytes(data)
    tus = tus_client.TusClient(f"{glimpse.url}/v2/images/{image_id}/uploads")
    uploader = tus.uploader(file_path=str(path), chunk_size=MIB, upload_checksum=True, metadata={"filename": "d"})
    uploader.upload()
    assert uploader.url.startswith(f"{glimpse.url}/v2/images/{image_id}/uploads/")
    published_as(glimpse, image_id, data)
    # The upload is over: it is no longer there to resume.
    assert httpx.head(uploader.url, headers=TUS, timeout=30).status_code == 404


def test_head_shows_the_offset_and_post_leaves_queued(glimpse: GlimpseServer) -> None:
    image_id = new_image(glimpse)
    response = create(glimpse, image_id, 10, **{"Upload-Metadata": "filename ZGlzay5yYXc="})
    assert response.status_code == 201
    assert response.headers["upload-expires"].endswith("GMT")
    url = response.headers["location"]
    assert image(glimpse, image_id)["status"] == "saving"
    assert send(url, 0, b"0123").status_code == 204
    head = httpx.head(url, headers=TUS, timeout=30)
    assert head.status_code == 200
    assert head.headers["upload-offset"] == "4"
    assert head.headers["upload-length"] == "10"
    assert head.headers["cache-control"] == "no-store"
    assert head.headers["tus-resumable"] == "1.0.0"
    assert "filename ZGlzay5yYXc=" in head.headers["upload-metadata"]
