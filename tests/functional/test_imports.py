"""Interoperable import with the real glance client: glance-direct, web-download, conversion, tasks, crashes."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.disk_bytes import raw_disk_bytes
from tests.functional import images
from tests.functional.clients import Clients
from tests.functional.http_server import FileServer
from tests.functional.server import GlimpseServer
from tests.functional.waiting import eventually

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    root = tmp_path_factory.mktemp("web")
    qcow2 = images.make_image(root, "qcow2", "48M")
    (root / "disk.qcow2").write_bytes(qcow2.read_bytes())
    (root / "disk.raw").write_bytes(raw_disk_bytes(3 * MIB))
    (root / "big.raw").write_bytes(raw_disk_bytes(6 * MIB))
    (root / "disk.raw.gz").write_bytes(gzip.compress((root / "disk.raw").read_bytes()))
    with FileServer(root) as server:
        yield server


def _importer(tmp_path: Path, files: FileServer, extra: str = "") -> GlimpseServer:
    conf = f"[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports = 80,443,{files.port}\n" + extra
    return GlimpseServer(tmp_path, extra_conf=conf).start()


def _wait_status(server: GlimpseServer, image_id: str, *wanted: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        image = httpx.get(f"{server.url}/v2/images/{image_id}").json()
        if image["status"] in wanted:
            return dict(image)
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} stayed {image['status']}, not {wanted}")


def _finished_tasks(server_url: str, image_id: str) -> list[dict[str, Any]]:
    """The image's tasks once none is still running. An import makes the image active (or queued again) first and
    records its task's outcome just after: a client that sees the image change may still see the task processing."""

    def finished() -> list[dict[str, Any]] | None:
        tasks: list[dict[str, Any]] = httpx.get(f"{server_url}/v2/images/{image_id}/tasks").json()["tasks"]
        return tasks if tasks and all(t["status"] not in ("pending", "processing") for t in tasks) else None

    return eventually(finished, timeout=60, what=f"the tasks of image {image_id} to finish")


def _create(server: GlimpseServer, **body: Any) -> dict[str, Any]:
    body = {"disk_format": "raw", "container_format": "bare", **body}
    response = httpx.post(f"{server.url}/v2/images", json=body)
    assert response.status_code == 201, response.text
    assert "glance-direct" in response.headers["openstack-image-import-methods"]
    return dict(response.json())


def _import(server: GlimpseServer, image_id: str, method: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.url}/v2/images/{image_id}/import", json={"method": method})


def test_glance_direct_and_web_download_with_the_glance_client(files: FileServer, tmp_path: Path) -> None:
    server = _importer(tmp_path / "srv", files)
    try:
        info = httpx.get(f"{server.url}/v2/info/import").json()["import-methods"]["value"]
        assert set(info) == {"glance-direct", "web-download", "copy-image"}
        glance = Clients(server.url, tmp_path / "home")
        qcow2 = files.root / "disk.qcow2"
        out = glance.glance(
            "image-create-via-import", "--name", "direct", "--disk-format", "qcow2", "--container-format", "bare",
            "--import-method", "glance-direct", "--file", str(qcow2),
        ).stdout  # fmt: skip
        image_id = next(line.split("|")[2].strip() for line in out.splitlines() if line.startswith("| id "))
        image = _wait_status(server, image_id, "active", "queued")
        assert image["status"] == "active"
        assert image["checksum"] == hashlib.md5(qcow2.read_bytes()).hexdigest()
        assert image["virtual_size"] == 48 * MIB
        # Glance leaves both lists empty once an import ended well (not missing: clients wait for the "").
        assert image.get("os_glance_importing_to_stores") == "" and image.get("os_glance_failed_import") == ""
        assert "os_glance_import_task" not in image
        staged = list((server.data_dir / "staging").glob(image_id + "*"))
        assert staged == []  # the staged copy is gone once imported
        tasks = _finished_tasks(server.url, image_id)
        assert [t["status"] for t in tasks] == ["success"]

        out = glance.glance(
            "image-create-via-import", "--name", "web", "--disk-format", "raw", "--container-format", "bare",
            "--import-method", "web-download", "--uri", f"{files.url}/files/disk.raw",
        ).stdout  # fmt: skip
        web_id = next(line.split("|")[2].strip() for line in out.splitlines() if line.startswith("| id "))
        web = _wait_status(server, web_id, "active", "queued")
        assert web["status"] == "active"
        assert web["os_hash_value"] == hashlib.sha512((files.root / "disk.raw").read_bytes()).hexdigest()
        listed = httpx.get(f"{server.url}/v2/tasks").json()["tasks"]
        assert {t["image_id"] for t in listed} >= {image_id, web_id}
    finally:
        server.stop()


def test_web_download_refuses_internal_and_redirected_addresses(files: FileServer, tmp_path: Path) -> None:
    strict = GlimpseServer(tmp_path / "strict").start()  # the defaults: loopback refused
    try:
        image = _create(strict)
        refused = _import(strict, image["id"], {"name": "web-download", "uri": f"{files.url}/files/disk.raw"})
        assert refused.status_code == 400
        assert "internal address" in refused.text or "not allowed" in refused.text
        for uri in ("file:///etc/passwd", "http://2130706433/x", "http://0x7f.1/x", "ftp://127.0.0.1/x"):
            assert _import(strict, image["id"], {"name": "web-download", "uri": uri}).status_code == 400, uri
        assert httpx.get(f"{strict.url}/v2/images/{image['id']}").json()["status"] == "queued"
    finally:
        strict.stop()
    # Loopback allowed, but only the host 127.0.0.1: a redirect to another host is refused when followed.
    lenient = _importer(tmp_path / "lenient", files, "allowed_hosts = 127.0.0.1\n")
    try:
        image = _create(lenient)
        target = f"http://localhost:{files.port}/files/disk.raw"
        started = _import(lenient, image["id"], {"name": "web-download", "uri": f"{files.url}/redirect?to={target}"})
        assert started.status_code == 202
        assert _wait_status(lenient, image["id"], "queued", "active")["status"] == "queued"
        task = _finished_tasks(lenient.url, image["id"])[0]
        assert task["status"] == "failure" and "localhost" in task["message"]
    finally:
        lenient.stop()


def test_conversion_and_decompression_on_import(files: FileServer, tmp_path: Path) -> None:
    plugins = "[image_import_opts]\nimage_import_plugins = image_decompression,image_conversion\n"
    server = _importer(tmp_path / "srv", files, plugins + "[image_conversion]\noutput_format = raw\n")
    try:
        image = _create(server, disk_format="qcow2")
        assert (
            _import(server, image["id"], {"name": "web-download", "uri": f"{files.url}/files/disk.qcow2"}).status_code
            == 202
        )
        converted = _wait_status(server, image["id"], "active", "queued")
        assert (converted["status"], converted["disk_format"]) == ("active", "raw")
        assert converted["size"] == 48 * MIB
        body = httpx.get(f"{server.url}/v2/images/{image['id']}/file", timeout=60).content
        local = tmp_path / "converted.raw"
        local.write_bytes(body)
        assert images.info(local)["format"] == "raw"
        assert hashlib.sha512(body).hexdigest() == converted["os_hash_value"]

        packed = _create(server, container_format="compressed")
        assert (
            _import(server, packed["id"], {"name": "web-download", "uri": f"{files.url}/files/disk.raw.gz"}).status_code
            == 202
        )
        unpacked = _wait_status(server, packed["id"], "active", "queued")
        assert (unpacked["status"], unpacked["container_format"]) == ("active", "bare")
        assert unpacked["checksum"] == hashlib.md5((files.root / "disk.raw").read_bytes()).hexdigest()
    finally:
        server.stop()


def test_mislabelled_import_fails_cleanly(files: FileServer, tmp_path: Path) -> None:
    server = _importer(tmp_path / "srv", files)
    try:
        image = _create(server, disk_format="raw")  # the file is really a qcow2
        assert (
            _import(server, image["id"], {"name": "web-download", "uri": f"{files.url}/files/disk.qcow2"}).status_code
            == 202
        )
        assert _wait_status(server, image["id"], "queued", "active")["status"] == "queued"
        task = _finished_tasks(server.url, image["id"])[0]
        assert task["status"] == "failure" and "qcow2" in task["message"]
        assert list((server.data_dir / "images").iterdir()) == []
    finally:
        server.stop()


def test_import_survives_a_killed_server(files: FileServer, tmp_path: Path) -> None:
    server = _importer(tmp_path / "srv", files)
    try:
        image = _create(server)
        slow = f"{files.url}/slow/big.raw"  # 6 MiB at 64 KiB every 0.2 s: about 20 s
        assert _import(server, image["id"], {"name": "web-download", "uri": slow}).status_code == 202
        _wait_status(server, image["id"], "importing")
        time.sleep(2)
        server.kill()
        server.start()
        assert "Resuming 1 interrupted import" in server.log.read_text()
        done = _wait_status(server, image["id"], "active", "queued", timeout=90)
        assert done["status"] == "active"
        assert done["checksum"] == hashlib.md5((files.root / "big.raw").read_bytes()).hexdigest()
        tasks = _finished_tasks(server.url, image["id"])
        assert tasks[0]["status"] == "success"
    finally:
        server.stop()


def test_a_glance_direct_import_killed_while_storing_resumes_from_the_staged_file(
    files: FileServer, tmp_path: Path
) -> None:
    """The import stores the staged file where it is: a kill -9 half-way leaves it untouched, the restarted server
    stores it again from the start, and it goes once the image is active."""
    server = _importer(tmp_path / "srv", files)
    try:
        image = _create(server)
        data = os.urandom(384 * MIB)  # long enough to be stored while the server is killed
        put = httpx.put(
            f"{server.url}/v2/images/{image['id']}/stage", content=data,
            headers={"Content-Type": "application/octet-stream"}, timeout=120,
        )  # fmt: skip
        assert put.status_code == 204
        assert _import(server, image["id"], {"name": "glance-direct"}).status_code == 202
        time.sleep(0.3)
        server.kill()
        staging = server.data_dir / "staging"
        assert (staging / image["id"]).stat().st_size == len(data)  # the staged data, whole
        server.start()
        done = _wait_status(server, image["id"], "active", "queued", timeout=120)
        assert done["status"] == "active" and done["size"] == len(data)
        assert done["checksum"] == hashlib.md5(data).hexdigest()
        assert not (staging / image["id"]).exists()
        stored = [p.name for p in (server.data_dir / "images").iterdir()]
        assert len(stored) == 1 and stored[0].startswith(image["id"]), stored  # the killed attempt's part is gone
    finally:
        server.stop()


def test_injected_metadata_and_stage_rules(files: FileServer, tmp_path: Path) -> None:
    extra = (
        "[image_import_opts]\nimage_import_plugins = inject_image_metadata\n"
        "[inject_metadata_properties]\ninject = provenance:imported,checked:yes\nignore_user_roles = admin\n"
    )
    server = _importer(tmp_path / "srv", files, extra)
    member = {"X-Project-Id": "p1", "X-Roles": "member"}
    try:
        image = httpx.post(
            f"{server.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, headers=member
        ).json()
        url = f"{server.url}/v2/images/{image['id']}"
        # import before staging: refused
        assert (
            httpx.post(f"{url}/import", json={"method": {"name": "glance-direct"}}, headers=member).status_code == 409
        )
        data = raw_disk_bytes(MIB)
        staged = httpx.put(f"{url}/stage", content=data, headers={**member, "Content-Type": "application/octet-stream"})
        assert staged.status_code == 204
        assert httpx.get(url, headers=member).json()["status"] == "uploading"
        assert (
            httpx.put(
                f"{url}/file", content=b"x", headers={**member, "Content-Type": "application/octet-stream"}
            ).status_code
            == 409
        )
        bad = httpx.post(f"{url}/import", json={"method": {"name": "nope"}}, headers=member)
        assert bad.status_code == 400
        assert (
            httpx.post(f"{url}/import", json={"method": {"name": "glance-direct"}}, headers=member).status_code == 202
        )
        done = _wait_status(server, image["id"], "active", "queued")
        assert done["provenance"] == "imported" and done["checked"] == "yes"
        assert json.loads(json.dumps(done))["checksum"] == hashlib.md5(data).hexdigest()
        # an administrator's imports get no injected properties
        admin_image = _create(server)
        httpx.put(
            f"{server.url}/v2/images/{admin_image['id']}/stage",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert _import(server, admin_image["id"], {"name": "glance-direct"}).status_code == 202
        assert "provenance" not in _wait_status(server, admin_image["id"], "active", "queued")
    finally:
        server.stop()


def test_glance_download_from_another_region(files: FileServer, tmp_path: Path) -> None:
    remote = GlimpseServer(tmp_path / "region-two").start()
    local = _importer(
        tmp_path / "region-one",
        files,
        "[DEFAULT]\nenabled_import_methods = glance-direct,web-download,glance-download\n"
        f"[glance_download_opts]\nregion_endpoints = RegionTwo:{remote.url}\n",
    )
    try:
        source = _create(remote, disk_format="qcow2", min_ram=512, os_distro="fedora", hw_disk_bus="scsi", secret="x")
        qcow2 = (files.root / "disk.qcow2").read_bytes()
        put = httpx.put(f"{remote.url}/v2/images/{source['id']}/file", content=qcow2,
                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert put.status_code == 204
        image = httpx.post(f"{local.url}/v2/images", json={"name": "copy-from-region-two"}).json()
        method = {"name": "glance-download", "glance_image_id": source["id"], "glance_region": "RegionTwo"}
        started = _import(local, image["id"], method)
        assert started.status_code == 202, started.text
        done = _wait_status(local, image["id"], "active", "queued")
        assert done["status"] == "active"
        assert (done["disk_format"], done["container_format"], done["min_ram"]) == ("qcow2", "bare", 512)
        assert done["os_distro"] == "fedora" and done["hw_disk_bus"] == "scsi"
        assert "secret" not in done  # only the properties the operator lists are inherited
        assert done["os_hash_value"] == hashlib.sha512(qcow2).hexdigest()
        unknown = {"name": "glance-download", "glance_image_id": source["id"], "glance_region": "Nowhere"}
        other = httpx.post(f"{local.url}/v2/images", json={"name": "x"}).json()
        assert _import(local, other["id"], unknown).status_code == 400
    finally:
        local.stop()
        remote.stop()


def test_copy_image_to_another_store(tmp_path: Path) -> None:
    conf = (
        "enabled_backends = fast:file, slow:file\n"
        "[glance_store]\ndefault_backend = fast\n"
        f"[fast]\nfilesystem_store_datadir = {tmp_path / 'fast'}\n"
        f"[slow]\nfilesystem_store_datadir = {tmp_path / 'slow'}\n"
    )
    server = GlimpseServer(tmp_path / "srv", extra_conf=conf).start()
    try:
        image = _create(server)
        data = raw_disk_bytes(2 * MIB)
        url = f"{server.url}/v2/images/{image['id']}"
        assert (
            httpx.put(f"{url}/file", content=data, headers={"Content-Type": "application/octet-stream"}).status_code
            == 204
        )
        assert httpx.get(url).json()["stores"] == "fast"
        member = {"X-Project-Id": "p1", "X-Roles": "member"}
        copy = {"method": {"name": "copy-image"}, "stores": ["slow"]}
        assert httpx.post(f"{url}/import", json=copy, headers=member).status_code in (403, 404)
        assert httpx.post(f"{url}/import", json=copy).status_code == 202
        # As in Glance, a finished copy leaves os_glance_importing_to_stores empty (clients such as Tempest's
        # waiters wait for the empty string) and os_glance_failed_import empty when no store failed.
        deadline = time.monotonic() + 30
        while httpx.get(url).json().get("os_glance_importing_to_stores") != "" and time.monotonic() < deadline:
            time.sleep(0.2)
        shown = httpx.get(url).json()
        assert sorted(shown["stores"].split(",")) == ["fast", "slow"]
        assert shown["status"] == "active" and shown["os_glance_importing_to_stores"] == ""
        assert shown["os_glance_failed_import"] == ""
        assert (
            httpx.post(f"{url}/import", json={"method": {"name": "copy-image"}, "all_stores": True}).status_code == 409
        )
        # The copy stands on its own: drop the first store's copy and the data still comes back whole.
        assert httpx.delete(f"{server.url}/v2/stores/fast/{image['id']}").status_code == 204
        assert httpx.get(f"{url}/file").content == data
        assert _finished_tasks(server.url, image["id"])[0]["status"] == "success"
    finally:
        server.stop()


def test_copy_image_respects_the_location_quota(tmp_path: Path) -> None:
    conf = (
        "image_location_quota = 1\nenabled_backends = fast:file, slow:file\n"
        "[glance_store]\ndefault_backend = fast\n"
        f"[fast]\nfilesystem_store_datadir = {tmp_path / 'fast'}\n"
        f"[slow]\nfilesystem_store_datadir = {tmp_path / 'slow'}\n"
    )
    server = GlimpseServer(tmp_path / "srv", extra_conf=conf).start()
    try:
        image = _create(server)
        url = f"{server.url}/v2/images/{image['id']}"
        httpx.put(f"{url}/file", content=b"x" * 1024, headers={"Content-Type": "application/octet-stream"})
        refused = httpx.post(f"{url}/import", json={"method": {"name": "copy-image"}, "stores": ["slow"]})
        assert refused.status_code == 413
        assert httpx.get(url).json()["stores"] == "fast"
    finally:
        server.stop()
