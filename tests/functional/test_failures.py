"""Failures half-way leave a consistent state: size caps, clients that vanish, a killed server."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.functional.databases import fresh_database
from tests.functional.server import GlimpseServer


def _partials(server: GlimpseServer) -> list[Path]:
    return list((server.data_dir / "images").glob("*.partial"))


def _queued_image(server: GlimpseServer) -> str:
    response = httpx.post(f"{server.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert response.status_code == 201
    return str(response.json()["id"])


def _status(server: GlimpseServer, image_id: str) -> str:
    return str(httpx.get(f"{server.url}/v2/images/{image_id}").json()["status"])


def _start_upload(server: GlimpseServer, image_id: str, declared: int, sent: bytes) -> socket.socket:
    """Begin a PUT of `declared` bytes and send only `sent`: the rest never comes."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(
        f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n".encode()
        + sent
    )
    return sock


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _wait_for(condition, timeout: float = 15) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_size_cap_refuses_while_streaming(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path, extra_conf="image_size_cap = 1048576").start()
    try:
        image_id = _queued_image(server)
        too_big = httpx.put(
            f"{server.url}/v2/images/{image_id}/file",
            content=b"x" * (1048576 + 1),
            headers={"Content-Type": "application/octet-stream"},
        )
        assert too_big.status_code == 413
        assert _status(server, image_id) == "queued"
        assert _partials(server) == []
        fits = httpx.put(
            f"{server.url}/v2/images/{image_id}/file",
            content=b"x" * 1048576,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert fits.status_code == 204
        assert _status(server, image_id) == "active"
    finally:
        server.stop()


def test_user_storage_quota(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path, extra_conf="user_storage_quota = 1MB").start()
    member = {"X-Project-Id": "p1", "X-Roles": "member"}
    headers = {**member, "Content-Type": "application/octet-stream"}
    try:
        ids = [
            httpx.post(
                f"{server.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, headers=member
            ).json()["id"]
            for _ in range(2)
        ]
        first = httpx.put(f"{server.url}/v2/images/{ids[0]}/file", content=b"a" * 700_000, headers=headers)
        assert first.status_code == 204
        second = httpx.put(f"{server.url}/v2/images/{ids[1]}/file", content=b"b" * 700_000, headers=headers)
        assert second.status_code == 413
        assert httpx.get(f"{server.url}/v2/images/{ids[1]}", headers=headers).json()["status"] == "queued"
        assert _partials(server) == []
    finally:
        server.stop()


def test_client_gone_mid_upload_returns_image_to_queued(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path).start()
    try:
        image_id = _queued_image(server)
        sock = _start_upload(server, image_id, 50 * 1024 * 1024, b"y" * (3 * 1024 * 1024))
        assert _wait_for(lambda: _status(server, image_id) == "saving")
        sock.close()
        assert _wait_for(lambda: _status(server, image_id) == "queued")
        assert _wait_for(lambda: _partials(server) == [])
        # The image can be uploaded again.
        done = httpx.put(
            f"{server.url}/v2/images/{image_id}/file",
            content=b"ok",
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 204
    finally:
        server.stop()


def test_killed_server_leaves_no_image_in_saving_and_no_orphan_data(tmp_path: Path) -> None:
    with fresh_database("postgresql") as url:
        server = GlimpseServer(tmp_path, url)
        assert server.command("db", "sync").returncode == 0
        server.start()
        try:
            image_id = _queued_image(server)
            sock = _start_upload(server, image_id, 50 * 1024 * 1024, b"z" * (4 * 1024 * 1024))
            assert _wait_for(lambda: _status(server, image_id) == "saving")
            assert _wait_for(lambda: len(_partials(server)) == 1)
            server.kill()
            sock.close()
            server.start()
            assert _status(server, image_id) == "queued"
            assert _partials(server) == []
            assert "interrupted upload" in server.log.read_text()
        finally:
            server.stop()


def test_serve_refuses_unsafe_or_unready_setups(tmp_path: Path) -> None:
    exposed = GlimpseServer(tmp_path, extra_conf="bind_host = 0.0.0.0")
    refused = exposed.command("serve")
    assert refused.returncode == 2
    assert "without authentication" in refused.stderr

    with fresh_database("mysql") as url:
        unmigrated = GlimpseServer(tmp_path, url)
        result = unmigrated.command("serve")
        assert result.returncode == 2
        assert "glimpse db sync" in result.stderr
        assert unmigrated.command("db", "version").stdout.strip() == "none"
        assert unmigrated.command("db", "sync").returncode == 0
        assert unmigrated.command("db", "version").stdout.strip() != "none"


def test_unknown_options_are_reported_once(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path, extra_conf="made_up_option = 1\n[glance_store]\nswift_store_nonsense = 2")
    server.start()
    try:
        log = server.log.read_text()
        assert log.count("Options Glimpse does not know") == 1
        assert "[DEFAULT] made_up_option" in log and "[glance_store] swift_store_nonsense" in log
    finally:
        server.stop()


def test_image_deleted_during_upload_keeps_nothing(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path).start()
    try:
        image_id = _queued_image(server)
        sock = _start_upload(server, image_id, 4 * 1024 * 1024, b"d" * (1024 * 1024))
        assert _wait_for(lambda: _status(server, image_id) == "saving")
        assert httpx.delete(f"{server.url}/v2/images/{image_id}").status_code == 204
        sock.sendall(b"d" * (3 * 1024 * 1024))
        reply = sock.recv(4096).decode()
        sock.close()
        assert reply.startswith("HTTP/1.1 410")
        assert httpx.get(f"{server.url}/v2/images/{image_id}").status_code == 404
        assert list((server.data_dir / "images").iterdir()) == []
    finally:
        server.stop()


def test_two_uploads_racing_for_one_image(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path).start()
    try:
        image_id = _queued_image(server)
        first = _start_upload(server, image_id, 2 * 1024 * 1024, b"1" * (1024 * 1024))
        assert _wait_for(lambda: _status(server, image_id) == "saving")
        second = httpx.put(
            f"{server.url}/v2/images/{image_id}/file",
            content=b"2" * 10,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert second.status_code == 409
        first.sendall(b"1" * (1024 * 1024))
        assert first.recv(4096).decode().startswith("HTTP/1.1 204")
        first.close()
        body = httpx.get(f"{server.url}/v2/images/{image_id}/file").content
        assert body == b"1" * (2 * 1024 * 1024)
    finally:
        server.stop()


def test_several_worker_processes_share_one_database(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path, extra_conf="workers = 2").start()
    try:
        ids = []
        for i in range(8):
            image_id = _queued_image(server)
            data = bytes([i]) * 1000
            put = httpx.put(
                f"{server.url}/v2/images/{image_id}/file",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert put.status_code == 204
            ids.append((image_id, data))
        for image_id, data in ids:
            assert httpx.get(f"{server.url}/v2/images/{image_id}/file").content == data
        assert server.proc is not None
        assert len(_children(server.proc.pid)) >= 2  # uvicorn's worker processes
    finally:
        server.stop()


def test_an_upload_whose_node_died_is_recovered_by_another_node(tmp_path: Path) -> None:
    """Two nodes over one PostgreSQL and one image folder; node A dies mid-upload and never comes back."""
    with fresh_database("postgresql") as url:
        shared = f"upload_heartbeat_timeout = 6\n[glance_store]\nfilesystem_store_datadir = {tmp_path / 'images'}"
        node_a = GlimpseServer(tmp_path / "a", url, extra_conf=shared)
        node_b = GlimpseServer(tmp_path / "b", url, extra_conf=shared)
        assert node_a.command("db", "sync").returncode == 0
        node_a.start()
        node_b.start()
        try:
            image_id = _queued_image(node_a)
            sock = _start_upload(node_a, image_id, 40 * 1024 * 1024, b"k" * (3 * 1024 * 1024))
            assert _wait_for(lambda: _status(node_b, image_id) == "saving")
            assert _wait_for(lambda: len(list((tmp_path / "images").glob("*.partial"))) == 1)
            node_a.kill()
            sock.close()
            # Node B notices the silence and puts the image back; the dead node's partial file goes too.
            assert _wait_for(lambda: _status(node_b, image_id) == "queued", timeout=40)
            assert _wait_for(lambda: list((tmp_path / "images").glob("*.partial")) == [])
            put = httpx.put(
                f"{node_b.url}/v2/images/{image_id}/file",
                content=b"again",
                headers={"Content-Type": "application/octet-stream"},
            )
            assert put.status_code == 204
        finally:
            node_a.stop()
            node_b.stop()
