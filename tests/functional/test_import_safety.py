"""Imports that never cost data or quota, against real servers: quotas on every way in, staged data
released on delete, leaked reservations swept at start-up, several imports at once, deleting an image
cancels its import, and glance-download pinned to the process holding the caller's token."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.disk_bytes import raw_disk_bytes
from tests.functional import images
from tests.functional.databases import fresh_database
from tests.functional.http_server import FileServer
from tests.functional.server import GlimpseServer
from tests.functional.waiting import eventually

MIB = 1024 * 1024
MEMBER = {"X-Project-Id": "p1", "X-Roles": "member"}
OCTETS = {"Content-Type": "application/octet-stream"}
FAST_BEATS = "task_heartbeat_interval = 0.5\ntask_stale_after = 3\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    root = tmp_path_factory.mktemp("web")
    (root / "disk.raw").write_bytes(raw_disk_bytes(3 * MIB))
    (root / "big.raw").write_bytes(raw_disk_bytes(6 * MIB))
    with FileServer(root) as server:
        yield server


def _conf(files: FileServer, extra: str = "") -> str:
    return f"{FAST_BEATS}{extra}[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports = {files.port}\n"


def _image(server: GlimpseServer, headers: dict[str, str] | None = None) -> str:
    body = {"disk_format": "raw", "container_format": "bare"}
    response = httpx.post(f"{server.url}/v2/images", json=body, headers=headers or {})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _show(server: GlimpseServer, image_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/v2/images/{image_id}").json())


def _task(server: GlimpseServer, image_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/v2/images/{image_id}/tasks").json()["tasks"][0])


def _web(server: GlimpseServer, image_id: str, uri: str, headers: dict[str, str] | None = None) -> None:
    body = {"method": {"name": "web-download", "uri": uri}}
    response = httpx.post(f"{server.url}/v2/images/{image_id}/import", json=body, headers=headers or {})
    assert response.status_code == 202, response.text


def _usage(server: GlimpseServer) -> dict[str, Any]:
    return dict(httpx.get(f"{server.url}/v2/info/usage", headers=MEMBER).json()["usage"])


def _bytes_used(server: GlimpseServer) -> tuple[int, int]:
    usage = _usage(server)
    return usage["image_size_total"]["usage"], usage["image_stage_total"]["usage"]


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_web_download_past_the_quota_keeps_nothing(files: FileServer, tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path / "srv", extra_conf=_conf(files)).start()
    try:
        assert httpx.put(f"{server.url}/v2/quotas/p1", json={"image_size_total": 1}).status_code == 200
        kept = _image(server, MEMBER)
        put = httpx.put(f"{server.url}/v2/images/{kept}/file", content=b"k" * 300_000, headers={**MEMBER, **OCTETS})
        assert put.status_code == 204
        before = _bytes_used(server)
        stored_before = _files(server.data_dir / "images")
        for uri in (f"{files.url}/files/big.raw", f"{files.url}/endless"):
            image_id = _image(server, MEMBER)
            _web(server, image_id, uri, MEMBER)
            eventually(lambda i=image_id: _task(server, i)["status"] == "failure", what=f"the import of {uri} to fail")
            assert "quota" in _task(server, image_id)["message"]
            shown = _show(server, image_id)
            assert shown["status"] == "queued" and "os_glance_failed_import" in shown
            assert _bytes_used(server) == before
            assert _files(server.data_dir / "images") == stored_before
            assert _files(server.data_dir / "staging") == []
        assert httpx.get(f"{server.url}/v2/images/{kept}/file").content == b"k" * 300_000
    finally:
        server.stop()


def test_deleting_a_staged_image_frees_its_file_and_quota(files: FileServer, tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path / "srv", extra_conf=_conf(files)).start()
    try:
        assert httpx.put(f"{server.url}/v2/quotas/p1", json={"image_size_total": 2}).status_code == 200
        staged = _image(server, MEMBER)
        data = raw_disk_bytes(1536 * 1024)
        stage = httpx.put(f"{server.url}/v2/images/{staged}/stage", content=data, headers={**MEMBER, **OCTETS})
        assert stage.status_code == 204
        assert (server.data_dir / "staging" / staged).exists()
        assert _usage(server)["image_stage_total"]["usage"] == 2  # 1.5 MiB, shown rounded up
        assert httpx.delete(f"{server.url}/v2/images/{staged}", headers=MEMBER).status_code == 204
        assert not (server.data_dir / "staging" / staged).exists()
        assert _usage(server)["image_size_total"]["usage"] == 0
        fresh = _image(server, MEMBER)
        put = httpx.put(f"{server.url}/v2/images/{fresh}/file", content=data, headers={**MEMBER, **OCTETS})
        assert put.status_code == 204, put.text
    finally:
        server.stop()


def test_a_restart_sweeps_a_leaked_reservation(files: FileServer, tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path / "srv", extra_conf=_conf(files)).start()
    try:
        assert httpx.put(f"{server.url}/v2/quotas/p1", json={"image_size_total": 4}).status_code == 200
        before = _usage(server)["image_size_total"]["usage"]
        with sqlite3.connect(server.data_dir / "glimpse.db") as db:  # what a process killed mid-upload leaves
            db.execute(
                "INSERT INTO quota_reservations (image_id, project_id, bytes, created_at) VALUES (?, ?, ?, ?)",
                (str(uuid.uuid4()), "p1", 3 * MIB, "2026-01-01 00:00:00"),
            )
        assert _usage(server)["image_size_total"]["usage"] == before + 3
        server.stop()
        server.start()
        assert _usage(server)["image_size_total"]["usage"] == before
        image_id = _image(server, MEMBER)
        put = httpx.put(f"{server.url}/v2/images/{image_id}/file", content=raw_disk_bytes(3 * MIB),
                        headers={**MEMBER, **OCTETS})  # fmt: skip
        assert put.status_code == 204, put.text
    finally:
        server.stop()


def test_a_slow_import_blocks_no_other_and_deleting_its_image_cancels_it(files: FileServer, tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path / "srv", extra_conf=_conf(files)).start()
    try:
        slow = _image(server)
        _web(server, slow, f"{files.url}/slow/big.raw")  # about 20 s
        eventually(lambda: "Received" in _task(server, slow)["message"], what="the slow import to be under way")
        fast = _image(server)
        _web(server, fast, f"{files.url}/files/disk.raw")
        eventually(lambda: _show(server, fast)["status"] == "active", timeout=15, what="the second import")
        assert _show(server, slow)["status"] == "importing"

        task_url = f"{server.url}/v2/tasks/{_task(server, slow)['id']}"
        assert httpx.delete(f"{server.url}/v2/images/{slow}").status_code == 204
        started = time.monotonic()
        task = eventually(
            lambda: (t := httpx.get(task_url).json())["status"] == "failure" and t, what="the cancellation"
        )
        assert time.monotonic() - started < 5
        assert "deleted" in task["message"]
        assert [name.split(".")[0] for name in _files(server.data_dir / "images")] == [fast]  # <id>.<attempt>
        eventually(lambda: _files(server.data_dir / "staging") == [], timeout=5, what="its scratch data to go")
    finally:
        server.stop()


def test_glance_download_runs_only_where_the_token_is(files: FileServer, tmp_path: Path) -> None:
    """Two processes over one PostgreSQL; the one holding the caller's token dies before it gets to run."""
    remote = GlimpseServer(tmp_path / "remote").start()
    with fresh_database("postgresql") as url:
        shared = f"[glance_store]\nfilesystem_store_datadir = {tmp_path / 'images'}\n"
        methods = "enabled_import_methods = glance-direct,web-download,glance-download\n"
        regions = f"[glance_download_opts]\nregion_endpoints = RegionTwo:{remote.url}\n"
        busy = "[taskflow_executor]\nmax_workers = 1\n"  # node a runs one import at a time
        a = GlimpseServer(tmp_path / "a", url, extra_conf=_conf(files, methods) + busy + regions + shared)
        b = GlimpseServer(tmp_path / "b", url, extra_conf=_conf(files, methods) + regions + shared)
        assert a.command("db", "sync").returncode == 0
        a.start()
        try:
            source = _image(remote)
            data = raw_disk_bytes(MIB)
            httpx.put(f"{remote.url}/v2/images/{source}/file", content=data, headers=OCTETS)
            slow = _image(a)
            _web(a, slow, f"{files.url}/slow/big.raw")  # keeps node a's only worker busy
            eventually(lambda: _task(a, slow)["status"] == "processing", what="the slow import to start")
            b.start()
            pinned = _image(a)
            method = {"name": "glance-download", "glance_image_id": source, "glance_region": "RegionTwo"}
            started = httpx.post(f"{a.url}/v2/images/{pinned}/import", json={"method": method})
            assert started.status_code == 202, started.text
            time.sleep(4)  # longer than task_stale_after: node b still may not take it
            assert _task(b, pinned)["status"] == "pending"
            a.kill()
            task = eventually(lambda: (t := _task(b, pinned))["status"] == "failure" and t, what="the orphan to fail")
            assert "start the import again" in task["message"]
            shown = _show(b, pinned)
            assert shown["status"] == "queued" and "os_glance_failed_import" in shown
            # node b takes the unpinned import over and finishes it
            eventually(lambda: _show(b, slow)["status"] == "active", timeout=90, what="the taken-over import")
            assert httpx.get(f"{b.url}/v2/images/{slow}/file").content == (files.root / "big.raw").read_bytes()
        finally:
            a.stop()
            b.stop()
            remote.stop()


def test_each_copy_and_the_converted_size_count(files: FileServer, tmp_path: Path) -> None:
    """copy-image counts each new copy; a conversion counts what it would store, refused before qemu-img."""
    qcow2 = images.make_image(tmp_path, "qcow2", "48M")  # small file, 48 MiB once converted to raw
    (files.root / "q.qcow2").write_bytes(qcow2.read_bytes())
    conf = (
        "[glance_store]\ndefault_backend = fast\n"
        f"[fast]\nfilesystem_store_datadir = {tmp_path / 'fast'}\n"
        f"[slow]\nfilesystem_store_datadir = {tmp_path / 'slow'}\n"
        "[image_import_opts]\nimage_import_plugins = image_conversion\n"
    )
    multi = "enabled_backends = fast:file, slow:file\n"
    server = GlimpseServer(tmp_path / "srv", extra_conf=_conf(files, multi) + conf).start()
    try:
        assert httpx.put(f"{server.url}/v2/quotas/p1", json={"image_size_total": 3}).status_code == 200
        image_id = _image(server, MEMBER)
        data = raw_disk_bytes(2 * MIB)
        put = httpx.put(f"{server.url}/v2/images/{image_id}/file", content=data, headers={**MEMBER, **OCTETS})
        assert put.status_code == 204
        copy = {"method": {"name": "copy-image"}, "stores": ["slow"]}
        refused = httpx.post(f"{server.url}/v2/images/{image_id}/import", json=copy)
        assert refused.status_code == 413, refused.text
        assert _bytes_used(server) == (2, 0) and _files(tmp_path / "slow") == []
        assert httpx.put(f"{server.url}/v2/quotas/p1", json={"image_size_total": 5}).status_code == 200
        assert httpx.post(f"{server.url}/v2/images/{image_id}/import", json=copy).status_code == 202
        eventually(lambda: _task(server, image_id)["status"] == "success", what="the copy")
        assert _bytes_used(server) == (4, 0)  # two copies of 2 MiB

        converted = _image(server, {**MEMBER})
        patch = [{"op": "replace", "path": "/disk_format", "value": "qcow2"}]
        headers = {**MEMBER, "Content-Type": "application/openstack-images-v2.1-json-patch"}
        assert httpx.patch(f"{server.url}/v2/images/{converted}", json=patch, headers=headers).status_code == 200
        _web(server, converted, f"{files.url}/files/q.qcow2", MEMBER)
        eventually(lambda: _task(server, converted)["status"] == "failure", what="the conversion to be refused")
        assert "quota" in _task(server, converted)["message"]
        assert _bytes_used(server) == (4, 0)
        assert _show(server, converted)["status"] == "queued"
        assert _files(server.data_dir / "staging") == []
    finally:
        server.stop()
