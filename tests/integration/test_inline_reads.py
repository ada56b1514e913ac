"""Shows and list pages on SQLite run on the event loop (api/deps.read): they must never wait for a writer, and
what does lock readers out must not stall the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import make_url

from glimpse.api import deps
from glimpse.db.session import LockedOut, make_engine, read_briefly
from tests.integration.inprocess import app_client, database, settings_for

IMAGE = {"name": "x", "disk_format": "raw", "container_format": "bare", "os_distro": "ubuntu"}
NO_REMOTE_CHECKS = SimpleNamespace(calls_out=False)  # a policy without http: rules


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


def test_a_database_locked_to_readers_stalls_only_the_reads_that_need_it(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (v INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    engine.dispose()
    # An operator's sqlite3 shell in exclusive locking mode: after its first write it keeps the whole file locked,
    # readers included, until it closes (a crashed writer's journal being recovered locks readers out the same way).
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE t SET v = 2")
    holder.execute("COMMIT")  # the lock stays: exclusive locking mode releases it only on close

    def value() -> int:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT v FROM t").scalar_one())

    started = time.monotonic()
    with pytest.raises(LockedOut):  # on the event loop a read waits briefly, not SQLite's 30 s
        read_briefly(value)
    assert time.monotonic() - started < 2

    state = SimpleNamespace(inline_reads=(read_briefly, LockedOut), policy=NO_REMOTE_CHECKS)
    request = SimpleNamespace(app=SimpleNamespace(state=state))

    async def read_while_the_loop_ticks() -> tuple[int, int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        asyncio.get_running_loop().call_later(0.5, holder.close)  # the operator leaves
        try:
            read = await deps.read(request, value)  # type: ignore[arg-type]
        finally:
            ticker.cancel()
        return read, ticks

    read, ticks = asyncio.run(read_while_the_loop_ticks())
    assert read == 2  # answered, in a thread, once the lock was gone
    assert ticks >= 20, ticks  # the event loop ran other work all the while
    with engine.connect() as conn:  # a connection taken outside a brief read waits as long as writers do
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30000
    engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_database_over_the_network_keeps_the_thread(tmp_path: Path, backend: str) -> None:
    with database(backend) as url, app_client(settings_for(tmp_path, url)) as client:
        assert client.app.state.inline_reads is None  # type: ignore[attr-defined]
        assert client.app.state.inline_writes is None  # type: ignore[attr-defined]
        image_id = client.post("/v2/images", json=IMAGE).json()["id"]
        assert client.get(f"/v2/images/{image_id}").json()["id"] == image_id
