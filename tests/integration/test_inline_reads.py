"""Shows and list pages on SQLite run on the event loop (api/deps.read): they must never wait for a writer."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import make_url

from tests.integration.inprocess import app_client, database, settings_for

IMAGE = {"name": "x", "disk_format": "raw", "container_format": "bare", "os_distro": "ubuntu"}


def test_reads_answer_while_a_writer_holds_the_database(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, None)
    with app_client(settings) as client:
        assert client.app.state.inline_reads  # type: ignore[attr-defined]
        image_id = client.post("/v2/images", json=IMAGE).json()["id"]
        path = make_url(settings.database_url).database
        assert path
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # another process writing: SQLite's write lock taken
        writer.execute("UPDATE images SET name = 'changing' WHERE id = ?", (image_id,))
        queued = threading.Event()

        def write_in_this_process() -> None:  # waits for the lock above, holding this process's writers' queue
            queued.set()
            client.patch(
                f"/v2/images/{image_id}",
                json=[{"op": "replace", "path": "/name", "value": "y"}],
                headers={"Content-Type": "application/openstack-images-v2.1-json-patch"},
            )

        patcher = threading.Thread(target=write_in_this_process)
        patcher.start()
        queued.wait()
        time.sleep(0.5)  # the PATCH reaches its transaction and waits there for the write lock
        try:
            started = time.monotonic()
            shown = client.get(f"/v2/images/{image_id}")
            listed = client.get("/v2/images", params={"os_distro": "ubuntu"})
            waited = time.monotonic() - started
        finally:
            writer.execute("ROLLBACK")
            writer.close()
            patcher.join(30)
        assert shown.status_code == 200 and shown.json()["name"] == "x"  # the last committed state
        assert listed.status_code == 200 and [i["id"] for i in listed.json()["images"]] == [image_id]
        assert waited < 5, waited  # SQLite's busy timeout is 30 s: a read that waited would show it
        assert client.get(f"/v2/images/{image_id}").json()["name"] == "y"  # the queued write went through after


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_database_over_the_network_keeps_the_thread(tmp_path: Path, backend: str) -> None:
    with database(backend) as url, app_client(settings_for(tmp_path, url)) as client:
        assert not client.app.state.inline_reads  # type: ignore[attr-defined]
        image_id = client.post("/v2/images", json=IMAGE).json()["id"]
        assert client.get(f"/v2/images/{image_id}").json()["id"] == image_id
