"""virtual_size as Glance sets it on every way data comes in: for raw, the size in bytes (the format inspector's)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.disk_bytes import raw_disk_bytes
from tests.functional import images
from tests.functional.http_server import FileServer
from tests.functional.server import GlimpseServer

RAW_SIZE = 3 * 1024 * 1024 + 512
OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    root = tmp_path_factory.mktemp("web")
    (root / "disk.raw").write_bytes(raw_disk_bytes(RAW_SIZE))
    (root / "disk.qcow2").write_bytes(images.make_image(root, "qcow2", "40M").read_bytes())
    with FileServer(root) as server:
        yield server


@pytest.fixture(scope="module")
def server(files: FileServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    conf = (
        f"[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports = {files.port}\n"
        "[image_import_opts]\nimage_import_plugins = image_conversion\n[image_conversion]\noutput_format = raw\n"
    )
    glimpse = GlimpseServer(tmp_path_factory.mktemp("srv"), extra_conf=conf).start()
    yield glimpse
    glimpse.stop()


def _create(server: GlimpseServer, disk_format: str = "raw") -> str:
    body = {"name": "vs", "disk_format": disk_format, "container_format": "bare"}
    return str(httpx.post(f"{server.url}/v2/images", json=body).json()["id"])


def _active(server: GlimpseServer, image_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        image = dict(httpx.get(f"{server.url}/v2/images/{image_id}").json())
        if image["status"] not in ("queued", "saving", "uploading", "importing"):
            assert image["status"] == "active", image
            return image
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} did not become active")


def test_an_uploaded_raw_image_gets_its_size_as_virtual_size(server: GlimpseServer, files: FileServer) -> None:
    image_id = _create(server)
    data = (files.root / "disk.raw").read_bytes()
    assert httpx.put(f"{server.url}/v2/images/{image_id}/file", content=data, headers=OCTETS).status_code == 204
    image = _active(server, image_id)
    assert image["size"] == image["virtual_size"] == RAW_SIZE


def test_a_staged_and_imported_raw_image_gets_it(server: GlimpseServer, files: FileServer) -> None:
    image_id = _create(server)
    data = (files.root / "disk.raw").read_bytes()
    assert httpx.put(f"{server.url}/v2/images/{image_id}/stage", content=data, headers=OCTETS).status_code == 204
    assert httpx.get(f"{server.url}/v2/images/{image_id}").json()["virtual_size"] is None  # as Glance: not yet
    imported = httpx.post(f"{server.url}/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    assert imported.status_code == 202, imported.text
    assert _active(server, image_id)["virtual_size"] == RAW_SIZE


def test_a_web_download_of_raw_data_gets_it(server: GlimpseServer, files: FileServer) -> None:
    image_id = _create(server)
    method = {"name": "web-download", "uri": f"{files.url}/files/disk.raw"}
    assert httpx.post(f"{server.url}/v2/images/{image_id}/import", json={"method": method}).status_code == 202
    assert _active(server, image_id)["virtual_size"] == RAW_SIZE


def test_a_qcow2_converted_to_raw_gets_the_virtual_size_of_the_disk(server: GlimpseServer, files: FileServer) -> None:
    image_id = _create(server, "qcow2")
    method = {"name": "web-download", "uri": f"{files.url}/files/disk.qcow2"}
    assert httpx.post(f"{server.url}/v2/images/{image_id}/import", json={"method": method}).status_code == 202
    image = _active(server, image_id)
    assert image["disk_format"] == "raw"
    assert image["virtual_size"] == image["size"] == 40 * 1024 * 1024


def test_no_virtual_size_for_an_uninspectable_format_or_no_data(server: GlimpseServer, files: FileServer) -> None:
    ami = _create(server, "ami")  # Glance cannot inspect ami: raw-looking data leaves it unset
    data = (files.root / "disk.raw").read_bytes()
    assert httpx.put(f"{server.url}/v2/images/{ami}/file", content=data, headers=OCTETS).status_code == 204
    assert _active(server, ami)["virtual_size"] is None
    empty = _create(server)
    assert httpx.put(f"{server.url}/v2/images/{empty}/file", content=b"", headers=OCTETS).status_code == 204
    assert _active(server, empty)["virtual_size"] is None  # Glance sets it only when not 0


def test_copy_image_fills_a_missing_virtual_size(tmp_path: Path, files: FileServer) -> None:
    conf = (
        "enabled_backends = fast:file, slow:file\n[glance_store]\ndefault_backend = fast\n"
        f"[fast]\nfilesystem_store_datadir = {tmp_path / 'fast'}\n"
        f"[slow]\nfilesystem_store_datadir = {tmp_path / 'slow'}\n"
    )
    server = GlimpseServer(tmp_path / "srv", extra_conf=conf).start()
    try:
        image_id = _create(server)
        data = (files.root / "disk.raw").read_bytes()
        assert httpx.put(f"{server.url}/v2/images/{image_id}/file", content=data, headers=OCTETS).status_code == 204
        assert _active(server, image_id)["virtual_size"] == RAW_SIZE
        with sqlite3.connect(server.data_dir / "glimpse.db") as db:  # as an image uploaded before raw got one
            db.execute("UPDATE images SET virtual_size = NULL WHERE id = ?", (image_id,))
        assert httpx.get(f"{server.url}/v2/images/{image_id}").json()["virtual_size"] is None
        body = {"method": {"name": "copy-image"}, "stores": ["slow"]}
        assert httpx.post(f"{server.url}/v2/images/{image_id}/import", json=body).status_code == 202
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            image = httpx.get(f"{server.url}/v2/images/{image_id}").json()
            if "slow" in image.get("stores", ""):
                break
            time.sleep(0.2)
        assert set(image["stores"].split(",")) == {"fast", "slow"}
        assert image["virtual_size"] == RAW_SIZE
    finally:
        server.stop()
