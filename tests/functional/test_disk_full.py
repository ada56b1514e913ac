"""A disk that fills up half-way: the file store and the staging area on small file systems of their own (tmpfs).

Whatever runs out of room, the caller is told so (413, or the import task's message), the image goes back to where
it was, no partial data is left behind, the room taken is given back, and the images already stored are intact.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.functional.http_server import FileServer
from tests.functional.server import GlimpseServer

MiB = 1024 * 1024
JSON = {"Content-Type": "application/json"}
OCTETS = {"Content-Type": "application/octet-stream"}


def _small_file_system(path: Path, mib: int) -> None:
    path.mkdir(parents=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:  # a machine where this runs as root can; anywhere else the test says why it cannot
        pytest.fail(f"A small file system is needed (mount -t tmpfs, as root): {done.stderr.decode().strip()}")


@pytest.fixture
def files(tmp_path: Path) -> Iterator[FileServer]:
    (tmp_path / "files").mkdir()
    with FileServer(tmp_path / "files") as server:
        yield server


@pytest.fixture
def full_server(tmp_path: Path, files: FileServer) -> Iterator[GlimpseServer]:
    """The file store on 8 MiB, the staging area on 24 MiB."""
    store, staging = tmp_path / "store", tmp_path / "staging"
    _small_file_system(store, 8)
    try:
        _small_file_system(staging, 24)
        server = GlimpseServer(
            tmp_path,
            extra_conf=f"node_staging_uri = file://{staging}\n"
            "enabled_import_methods = glance-direct,web-download,copy-image\n"
            f"[glance_store]\nfilesystem_store_datadir = {store}\n"
            f"[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports = {files.port}\n",
        ).start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        for mount in (staging, store):
            subprocess.run(["umount", "--lazy", str(mount)], capture_output=True)


def _free(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def _files(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


def _new_image(server: GlimpseServer) -> str:
    created = httpx.post(f"{server.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _image(server: GlimpseServer, image_id: str) -> dict[str, object]:
    return dict(httpx.get(f"{server.url}/v2/images/{image_id}").json())


def _stored(server: GlimpseServer, data: bytes) -> str:
    image_id = _new_image(server)
    put = httpx.put(f"{server.url}/v2/images/{image_id}/file", content=data, headers=OCTETS)
    assert put.status_code == 204, put.text
    return image_id


def _intact(server: GlimpseServer, image_id: str, data: bytes) -> None:
    got = httpx.get(f"{server.url}/v2/images/{image_id}/file")
    assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(data).digest()


def _task_of(server: GlimpseServer, image_id: str) -> dict[str, object]:
    """The image's import task, once it has ended."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tasks = httpx.get(f"{server.url}/v2/images/{image_id}/tasks").json()["tasks"]
        if tasks and tasks[0]["status"] in ("success", "failure"):
            return dict(tasks[0])
        time.sleep(0.2)
    raise AssertionError(f"the import of {image_id} did not end")


def test_an_upload_to_a_full_store_is_refused_and_leaves_nothing(full_server: GlimpseServer, tmp_path: Path) -> None:
    server, store = full_server, tmp_path / "store"
    first = os.urandom(2 * MiB)
    kept = _stored(server, first)
    free = _free(store)
    image_id = _new_image(server)
    refused = httpx.put(f"{server.url}/v2/images/{image_id}/file", content=os.urandom(10 * MiB), headers=OCTETS)
    assert refused.status_code == 413 and "storage media is full" in refused.text, refused.text
    assert _image(server, image_id)["status"] == "queued"
    assert _files(store) == [kept] and _free(store) == free  # the partial file is gone, its room given back
    _intact(server, kept, first)
    fits = os.urandom(3 * MiB)  # the same image, once it fits
    assert httpx.put(f"{server.url}/v2/images/{image_id}/file", content=fits, headers=OCTETS).status_code == 204
    assert _image(server, image_id)["status"] == "active"
    _intact(server, image_id, fits)


def test_staging_more_than_the_staging_area_holds_is_refused(full_server: GlimpseServer, tmp_path: Path) -> None:
    server, staging = full_server, tmp_path / "staging"
    image_id = _new_image(server)
    refused = httpx.put(f"{server.url}/v2/images/{image_id}/stage", content=os.urandom(30 * MiB), headers=OCTETS)
    assert refused.status_code == 413 and "storage media is full" in refused.text, refused.text
    assert _image(server, image_id)["status"] == "queued"
    assert _files(staging) == []
    data = os.urandom(2 * MiB)  # staged again when it fits, and imported
    assert httpx.put(f"{server.url}/v2/images/{image_id}/stage", content=data, headers=OCTETS).status_code == 204
    started = httpx.post(
        f"{server.url}/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}, headers=JSON
    )
    assert started.status_code == 202, started.text
    assert _task_of(server, image_id)["status"] == "success"
    _intact(server, image_id, data)


def test_an_import_into_a_full_store_fails_saying_so(full_server: GlimpseServer, tmp_path: Path) -> None:
    server, store, staging = full_server, tmp_path / "store", tmp_path / "staging"
    first = os.urandom(2 * MiB)
    kept = _stored(server, first)
    image_id = _new_image(server)
    staged = httpx.put(f"{server.url}/v2/images/{image_id}/stage", content=os.urandom(7 * MiB), headers=OCTETS)
    assert staged.status_code == 204
    started = httpx.post(
        f"{server.url}/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}, headers=JSON
    )
    assert started.status_code == 202, started.text
    task = _task_of(server, image_id)
    assert task["status"] == "failure" and "storage media is full" in str(task["message"]), task
    assert _image(server, image_id)["status"] == "queued"
    assert _files(store) == [kept]
    assert _files(staging) == []  # neither the staged data nor the import's working copy stays
    _intact(server, kept, first)


def test_a_staged_image_is_imported_from_where_it_was_staged(full_server: GlimpseServer, tmp_path: Path) -> None:
    """The staged data is read where it is, not copied to the work area first: 14 MiB staged in 24 MiB of staging
    import into a store with room for them (a copy would not have fitted beside it)."""
    server, staging = full_server, tmp_path / "staging"
    image_id = _new_image(server)
    data = os.urandom(7 * MiB)
    staged = httpx.put(f"{server.url}/v2/images/{image_id}/stage", content=data, headers=OCTETS)
    assert staged.status_code == 204
    filler = staging / "filler"  # leaves less room than a second copy of the staged data needs
    filler.write_bytes(b"\0" * (_free(staging) - 2 * MiB))
    try:
        started = httpx.post(
            f"{server.url}/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}, headers=JSON
        )
        assert started.status_code == 202, started.text
        assert _task_of(server, image_id)["status"] == "success"
    finally:
        filler.unlink()
    _intact(server, image_id, data)
    assert _files(staging) == []


def test_an_import_whose_work_area_fills_up_fails_saying_so(
    full_server: GlimpseServer, files: FileServer, tmp_path: Path
) -> None:
    """web-download writes what it fetches to the work area in node_staging_uri before storing it: 30 MiB do
    not fit in 24."""
    server, store, staging = full_server, tmp_path / "store", tmp_path / "staging"
    (files.root / "big.raw").write_bytes(os.urandom(30 * MiB))
    image_id = _new_image(server)
    started = httpx.post(
        f"{server.url}/v2/images/{image_id}/import",
        json={"method": {"name": "web-download", "uri": f"{files.url}/files/big.raw"}},
        headers=JSON,
    )
    assert started.status_code == 202, started.text
    task = _task_of(server, image_id)
    assert task["status"] == "failure" and "work area" in str(task["message"]) and "full" in str(task["message"])
    assert "Errno" not in str(task["message"])
    assert _image(server, image_id)["status"] == "queued"
    assert _files(store) == [] and _files(staging) == []
    assert "Traceback" not in server.log.read_text()  # an operator's problem, said in one line, not a crash


def test_a_copy_from_a_file_store_is_read_where_it_is(tmp_path: Path) -> None:
    """copy-image reads a file store's data in place: 6 MiB copy to another store with 4 MiB of staging room."""
    staging = tmp_path / "staging"
    _small_file_system(staging, 4)
    try:
        server = GlimpseServer(
            tmp_path,
            extra_conf=f"node_staging_uri = file://{staging}\nenabled_import_methods = copy-image\n"
            "enabled_backends = local:file, other:file\n[glance_store]\ndefault_backend = local\n"
            f"[local]\nfilesystem_store_datadir = {tmp_path / 'local'}\n"
            f"[other]\nfilesystem_store_datadir = {tmp_path / 'other'}\n",
        ).start()
        try:
            data = os.urandom(6 * MiB)
            image_id = _stored(server, data)
            started = httpx.post(
                f"{server.url}/v2/images/{image_id}/import",
                json={"method": {"name": "copy-image"}, "stores": ["other"]},
                headers=JSON,
            )
            assert started.status_code == 202, started.text
            assert _task_of(server, image_id)["status"] == "success"
            copies = _files(tmp_path / "other")  # named for the copy's attempt
            assert len(copies) == 1 and copies[0].startswith(image_id) and _files(staging) == []
            assert sorted(_image(server, image_id)["stores"].split(",")) == ["local", "other"]  # type: ignore[union-attr]
            _intact(server, image_id, data)
        finally:
            server.stop()
    finally:
        subprocess.run(["umount", "--lazy", str(staging)], capture_output=True)
