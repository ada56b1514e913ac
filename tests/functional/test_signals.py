"""Signals to a real `glimpse serve`: SIGHUP reloads the policy file and log levels without dropping a
transfer (one process and several workers); SIGTERM lets transfers finish up to graceful_shutdown_timeout,
refuses new connections meanwhile, and puts an upload that cannot finish back to queued."""

from __future__ import annotations

import hashlib
import signal
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.functional.logfiles import children, image_with_data, send, wait_for
from tests.functional.server import GlimpseServer

SIZE = 48 * 1024 * 1024  # far more than the socket buffers hold: the download is still running when signalled
DATA = bytes(range(256)) * (SIZE // 256)
MD5 = hashlib.md5(DATA, usedforsecurity=False).hexdigest()


@contextmanager
def download_in_flight(server: GlimpseServer, image_id: str) -> Iterator[Iterator[bytes]]:
    """A download whose head and first bytes have arrived; the rest is read when the caller asks for it.

    The client's receive buffer is small (no autotuning), so the server is still sending when signalled."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.settimeout(60)
    sock.connect(("127.0.0.1", server.port))
    sock.sendall(f"GET /v2/images/{image_id}/file HTTP/1.1\r\nhost: x\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        received += sock.recv(65536)
    head, _, first = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    fields = dict(line.split(b": ", 1) for line in head.lower().split(b"\r\n")[1:])
    length = int(fields[b"content-length"])

    def rest() -> Iterator[bytes]:
        yield first
        left = length - len(first)
        while left > 0:
            chunk = sock.recv(min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    try:
        yield rest()
    finally:
        sock.close()


def md5_of(chunks: Iterator[bytes]) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def _policy_conf(tmp_path: Path, extra: str = "") -> tuple[Path, str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text("{}\n")
    return policy, f"{extra}[oslo_policy]\npolicy_file = {policy}\n"


def test_sighup_reloads_policy_and_log_levels_while_a_download_runs(tmp_path: Path) -> None:
    policy, conf = _policy_conf(tmp_path, "default_log_levels = glimpse.access=WARN\n")
    server = GlimpseServer(tmp_path, extra_conf=conf).start()
    try:
        image_id = image_with_data(server, DATA)
        assert httpx.get(f"{server.url}/v2/images", timeout=30).status_code == 200
        with download_in_flight(server, image_id) as chunks:
            policy.write_text('"get_images": "!"\n')
            server.conf.write_text(server.conf.read_text().replace("glimpse.access=WARN", "glimpse.access=INFO")
                                   .replace("[DEFAULT]\n", "[DEFAULT]\ndebug = true\n"))  # fmt: skip
            send(server, signal.SIGHUP)
            wait_for(server.log, "SIGHUP: reloaded")
            time.sleep(0.5)
            assert md5_of(chunks) == MD5
        assert server.proc is not None and server.proc.poll() is None
        refused = httpx.get(f"{server.url}/v2/images", timeout=30)
        assert refused.status_code == 403
        wait_for(server.log, '"GET /v2/images HTTP/1.1" status: 403')
        server.conf.write_text(server.conf.read_text().replace("debug = true", "debug = maybe"))
        send(server, signal.SIGHUP)  # a file that no longer reads changes nothing and stops nothing
        text = wait_for(server.log, "SIGHUP: reload failed, the previous policy and log levels stay")
        assert httpx.get(f"{server.url}/v2/images", timeout=30).status_code == 403
    finally:
        server.stop()
    assert f"reloaded policy file {policy} and log levels (debug True)" in text
    assert '"PUT /v2/images/' not in text  # glimpse.access was at WARN before the reload


def test_sighup_with_workers_keeps_the_workers_and_their_downloads(tmp_path: Path) -> None:
    policy, conf = _policy_conf(tmp_path)
    server = GlimpseServer(tmp_path, extra_conf=conf).start("--workers", "2")
    assert server.proc is not None
    try:
        wait_for(server.log, "Application startup complete", timeout=30)
        image_id = image_with_data(server, DATA)
        workers = children(server.proc.pid)
        with download_in_flight(server, image_id) as chunks:
            policy.write_text('"get_images": "!"\n')
            send(server, signal.SIGHUP)
            deadline = time.monotonic() + 15
            while server.log.read_text().count("SIGHUP: reloaded") < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert md5_of(chunks) == MD5
        assert children(server.proc.pid) == workers  # uvicorn's own supervisor would have replaced them
        for _ in range(4):  # whichever worker answers has the new policy
            assert httpx.get(f"{server.url}/v2/images", headers={"connection": "close"}, timeout=30).status_code == 403
        text = server.log.read_text()
    finally:
        server.stop()
    assert text.count("SIGHUP: reloaded") == 3, text  # the supervisor and both workers
    assert "restarting processes" not in text


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_lets_a_download_finish_and_refuses_new_connections(tmp_path: Path, workers: str) -> None:
    server = GlimpseServer(tmp_path, extra_conf="graceful_shutdown_timeout = 30\n").start("--workers", workers)
    assert server.proc is not None
    try:
        wait_for(server.log, "Application startup complete", timeout=30)
        image_id = image_with_data(server, DATA)
        with download_in_flight(server, image_id) as chunks:
            send(server, signal.SIGTERM)
            wait_for(server.log, "Shutting down")
            time.sleep(0.5)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
            assert server.proc.poll() is None  # still serving the download
            assert md5_of(chunks) == MD5
        finished = time.monotonic()
        server.proc.wait(timeout=20)
        assert time.monotonic() - finished < 15
    finally:
        server.kill()
    assert "did not finish in time" not in server.log.read_text()


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (head and body may come in separate segments)."""
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def _stalled_upload(server: GlimpseServer, image_id: str, size: int) -> socket.socket:
    """A PUT that announces `size` bytes, sends a quarter of them and then nothing more."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    head = (
        f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\n"
        f"content-length: {size}\r\nx-openstack-image-size: {size}\r\nx-project-id: p-one\r\nx-roles: member\r\n\r\n"
    )
    sock.sendall(head.encode() + b"u" * (size // 4))
    return sock


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_puts_an_upload_that_cannot_finish_back_to_queued(tmp_path: Path, workers: str) -> None:
    conf = "graceful_shutdown_timeout = 2\nuser_storage_quota = 1GB\n"
    server = GlimpseServer(tmp_path, extra_conf=conf).start("--workers", workers)
    assert server.proc is not None
    database = server.data_dir / "glimpse.db"
    try:
        image_id = image_with_data(server, b"", {"x-project-id": "p-one", "x-roles": "member"})
        sock = _stalled_upload(server, image_id, 16 * 1024 * 1024)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with sqlite3.connect(database) as db:
                held = db.execute("SELECT bytes FROM quota_reservations WHERE image_id = ?", (image_id,)).fetchall()
                status = db.execute("SELECT status FROM images WHERE id = ?", (image_id,)).fetchone()[0]
            if status == "saving" and held:
                break
            time.sleep(0.1)
        assert (status, held) == ("saving", [(16 * 1024 * 1024,)])
        assert [p for p in (server.data_dir / "images").rglob("*") if image_id in p.name]  # the partial file
        signalled = time.monotonic()
        send(server, signal.SIGTERM)
        sock.settimeout(30)
        answer = _until_closed(sock)  # the upload is told, in Glance's error format
        server.proc.wait(timeout=30)
        took = time.monotonic() - signalled
        sock.close()
    finally:
        server.kill()
    assert 2 <= took < 12, took
    assert answer.startswith(b"HTTP/1.1 503 ") and b"shutting down" in answer, answer
    with sqlite3.connect(database) as db:
        row = db.execute("SELECT status, size, checksum FROM images WHERE id = ?", (image_id,)).fetchone()
        held = db.execute("SELECT bytes FROM quota_reservations WHERE image_id = ?", (image_id,)).fetchall()
    assert row == ("queued", None, None) and held == []
    assert not [p for p in (server.data_dir / "images").rglob("*") if image_id in p.name]
    text = server.log.read_text()
    assert "graceful_shutdown_timeout (2 s) passed: 1 upload(s) stopped, back to queued" in text
    assert "Traceback" not in text and "CancelledError" not in text and "go back to queued" not in text
    assert "status: 503" in text
    # the next start has nothing left to recover
    restarted = GlimpseServer.__new__(GlimpseServer)
    restarted.__dict__.update(server.__dict__)
    restarted.start("--workers", workers)
    restarted.stop()
    assert "Recovered" not in server.log.read_text()
