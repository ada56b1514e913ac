"""Logs of a real `glimpse serve`: start-up report, access lines (text and JSON), 500s and failed imports
with their tracebacks and request ids, credentials redacted, several workers writing one file."""

from __future__ import annotations

import socket
import sqlite3
import time
from pathlib import Path

import httpx

from tests.functional.logfiles import image_with_data, json_lines, wait_for
from tests.functional.server import GlimpseServer, free_port

USER = {"x-user-id": "u-alice", "x-project-id": "p-one", "x-roles": "member"}


def test_start_up_report_and_text_access_lines(tmp_path: Path) -> None:
    log = tmp_path / "glimpse.log"
    server = GlimpseServer(tmp_path).start("--log-file", str(log))
    try:
        data = b"x" * 1_000_000
        image_id = image_with_data(server, data, USER)
        got = httpx.get(f"{server.url}/v2/images/{image_id}/file", headers=USER, timeout=30)
        assert got.content == data
        listed = httpx.get(f"{server.url}/v2/images?limit=1&token=s3cret-value&sig=abc", timeout=30)
        text = wait_for(log, "token=***")
    finally:
        server.stop()
    for expected in (
        f"Glimpse serving the Images API v2 on {server.url}",
        f"dashboard: {server.url}/dashboard",
        "authentication: none",
        f"database: sqlite:///{server.data_dir.absolute()}/glimpse.db",
        f"store file (file): {server.data_dir.absolute()}/images [default]",
        "workers: 1; graceful_shutdown_timeout: 60 s",
        "policy file: none",
        f"log: {log} (text)",
    ):
        assert expected in text, expected
    upload = next(line for line in text.splitlines() if f'"PUT /v2/images/{image_id}/file' in line)
    assert f"[{got.headers['x-openstack-request-id']}" not in upload  # each request has its own id
    assert "INFO glimpse.access [req-" in upload and " u-alice p-one]" in upload
    assert "status: 204 len: 0 in: 1000000" in upload
    download = next(line for line in text.splitlines() if f'"GET /v2/images/{image_id}/file' in line)
    assert f"[{got.headers['x-openstack-request-id']} u-alice p-one]" in download
    assert "status: 200 len: 1000000 in: 0" in download
    assert listed.status_code == 200 and "s3cret-value" not in text and "sig=***" in text
    assert "(client disconnected)" not in text and "(incomplete)" not in text
    # the server's own output (stdout and stderr) got no log line, only the start-up report
    terminal = server.log.read_text()
    assert "glimpse.access" not in terminal and "uvicorn" not in terminal
    assert f"Glimpse serving the Images API v2 on {server.url}" in terminal and f"log: {log} (text)" in terminal


def _download_then_hang_up(server: GlimpseServer, image_id: str) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(f"GET /v2/images/{image_id}/file HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received or received.endswith(b"\r\n\r\n"):  # the head and a first piece
            received += sock.recv(65536)
        # then the client goes away
    time.sleep(0.5)


def test_json_lines_for_log_shippers_and_a_client_that_hangs_up(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path, extra_conf="log_file = json.log\nlog_dir = " + str(tmp_path)).start(
        "--log-format", "json"
    )
    log = tmp_path / "json.log"
    try:
        image_id = image_with_data(server, b"z" * 16 * 1024 * 1024)
        _download_then_hang_up(server, image_id)
        wait_for(log, "client disconnected")
    finally:
        server.stop()
    entries = json_lines(log)  # every line is one JSON object
    keys = {tuple(e) for e in entries if e["name"] != "glimpse.access"}
    assert len(keys) == 1, keys  # the same keys on every line
    access = [e for e in entries if e["name"] == "glimpse.access"]
    assert {tuple(e) for e in access} == {(*next(iter(keys)), "remote_addr", "method", "path", "status", "bytes_in",
                                            "bytes_out", "duration", "outcome")}  # fmt: skip
    hung = [e for e in access if e["path"] == f"/v2/images/{image_id}/file" and e["method"] == "GET"]
    assert len(hung) == 1 and hung[0]["outcome"] == "client disconnected"
    assert hung[0]["status"] == 200 and 0 < hung[0]["bytes_out"] < 16 * 1024 * 1024
    assert hung[0]["request_id"].startswith("req-") and hung[0]["remote_addr"] == "127.0.0.1"
    startup = [e["message"] for e in entries if e["name"] == "glimpse"]
    assert any(m.startswith("  log: ") and m.endswith("json.log (JSON)") for m in startup), startup


def test_a_500_is_logged_once_with_its_traceback_and_request_id(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path).start()
    try:
        image_id = image_with_data(server, b"")
        with sqlite3.connect(server.data_dir / "glimpse.db") as db:  # the schema breaks under the server
            db.execute("ALTER TABLE image_tags RENAME TO image_tags_gone")
        failed = httpx.get(f"{server.url}/v2/images/{image_id}?password=hunter2", timeout=30)
        assert failed.status_code == 500
        request_id = failed.headers["x-openstack-request-id"]
        text = wait_for(server.log, f'"GET /v2/images/{image_id}?password=*** HTTP/1.1" status: 500')
    finally:
        server.stop()
    error = next(i for i, line in enumerate(text.splitlines()) if "Unexpected error" in line)
    lines = text.splitlines()
    assert f"ERROR glimpse.app [{request_id} - -] Unexpected error on GET /v2/images/{image_id}" in lines[error]
    assert lines[error + 1] == "Traceback (most recent call last):"
    assert "no such table: image_tags" in text
    assert "Exception in ASGI application" not in text  # the traceback is not repeated by uvicorn
    assert "status: 500 len: 0 in: 0" in text and "(error)" in text
    assert "hunter2" not in text


def test_a_failed_import_is_logged_with_its_request_id_and_no_credentials(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there: the download fails inside the task
    conf = f"[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports = {closed}\n"
    server = GlimpseServer(tmp_path, extra_conf=conf).start()
    try:
        image_id = image_with_data(server, b"", USER)
        body = {"method": {"name": "web-download", "uri": f"http://admin:pa55word@127.0.0.1:{closed}/disk.img"}}
        started = httpx.post(f"{server.url}/v2/images/{image_id}/import", json=body, headers=USER, timeout=30)
        assert started.status_code == 202, started.text
        request_id = started.headers["x-openstack-request-id"]
        text = wait_for(server.log, "Import task")
    finally:
        server.stop()
    failure = next(line for line in text.splitlines() if "Import task" in line)
    assert f"WARNING glimpse.domain.import_runner [{request_id} u-alice p-one]" in failure
    assert f"of image {image_id} failed" in failure
    assert "pa55word" not in text


def test_every_worker_logs_to_the_same_file(tmp_path: Path) -> None:
    log = tmp_path / "workers.log"
    server = GlimpseServer(tmp_path).start("--workers", "2", "--log-file", str(log))
    try:
        deadline = time.monotonic() + 30
        pids: set[str] = set()
        while len(pids) < 2 and time.monotonic() < deadline:
            with httpx.Client(timeout=10) as fresh:  # a new connection each time: the kernel spreads them
                fresh.get(f"{server.url}/v2/images", headers={"connection": "close"})
            pids = {line.split()[2] for line in log.read_text().splitlines() if " glimpse.access [" in line}
    finally:
        server.stop()
    assert len(pids) == 2, pids
    text = log.read_text()
    assert "workers: 2" in text
    assert text.count("Application startup complete.") == 2
