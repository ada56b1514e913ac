"""`glimpse db backup` during concurrent writes, `glimpse db restore` refused while serving (and after a
kill -9, not), `glimpse store verify` after a restore, and `glimpse db purge` on every database."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from tests.disk_bytes import raw_disk_bytes
from tests.functional.databases import fresh_database
from tests.functional.server import GLIMPSE, GlimpseServer

OCTETS = {"Content-Type": "application/octet-stream"}


def _image(server: GlimpseServer, **props: object) -> str:
    body = {"disk_format": "raw", "container_format": "bare", **props}
    image_id: str = httpx.post(f"{server.url}/v2/images", json=body, timeout=30).json()["id"]
    # Data of its own: identical data would be stored once (deduplication), and these tests follow each copy.
    put = httpx.put(f"{server.url}/v2/images/{image_id}/file", content=raw_disk_bytes(2048), headers=OCTETS, timeout=30)
    assert put.status_code == 204
    return image_id


def _glimpse(server: GlimpseServer, *args: str) -> subprocess.CompletedProcess[str]:
    return server.command(*args)


def test_backup_while_writing_restore_refused_while_serving_then_verify(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path / "node").start()
    try:
        before = {_image(server, tags=["before"]) for _ in range(5)}
        stop = threading.Event()
        written: list[str] = []

        def writer() -> None:
            while not stop.is_set():
                written.append(_image(server, tags=["during"], os_distro="x"))

        threads = [threading.Thread(target=writer) for _ in range(2)]
        for t in threads:
            t.start()
        backups = []
        try:
            for n in range(4):
                target = tmp_path / f"backup-{n}.db"
                result = _glimpse(server, "db", "backup", str(target))
                assert result.returncode == 0, result.stderr
                backups.append(target)
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert written, "nothing was written during the backups"
        for target in backups:  # each copy is whole and consistent on its own
            conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
            ids = {r[0] for r in conn.execute("SELECT id FROM images")}
            assert before <= ids
            # An image is in a copy with all of its rows or not at all.
            torn = conn.execute(
                "SELECT count(*) FROM images i WHERE i.status = 'active' AND NOT EXISTS "
                "(SELECT 1 FROM image_locations l WHERE l.image_id = i.id)"
            ).fetchone()[0]
            assert torn == 0
            conn.close()

        chosen = backups[0]
        refused = _glimpse(server, "db", "restore", str(chosen))
        assert refused.returncode == 2
        assert "Refusing to restore" in " ".join(refused.stderr.split())
        gone = next(iter(before))
        assert httpx.delete(f"{server.url}/v2/images/{gone}").status_code == 204  # after the backup
        server.kill()  # -9: no stale "serving" state may remain
        restored = _glimpse(server, "db", "restore", str(chosen))
        assert restored.returncode == 0, restored.stderr
        assert "kept as" in " ".join(restored.stdout.split())

        server.start()
        listed = {i["id"] for i in httpx.get(f"{server.url}/v2/images?limit=1000").json()["images"]}
        conn = sqlite3.connect(f"file:{chosen}?mode=ro", uri=True)
        assert listed == {r[0] for r in conn.execute("SELECT id FROM images WHERE deleted = 0")}
        conn.close()
        assert gone in listed  # back in the database, its data is not
        verify = _glimpse(server, "store", "verify")
        out = " ".join(verify.stdout.split())
        assert verify.returncode == 1
        assert f"missing image {gone}" in out
        created_after = [i for i in written if i not in listed]
        assert created_after
        # Images created after the backup, and any the backup caught mid-upload (rows without a location).
        assert all(f"/images/{i} in store file" in out for i in created_after), out
        reported = out.count("unreferenced data")
        assert reported >= len(created_after) and f"; {reported} unreferenced file(s)." in out
    finally:
        server.stop()


def test_backup_and_restore_of_an_external_database_point_to_its_tools(tmp_path: Path) -> None:
    with fresh_database("postgresql") as url:
        server = GlimpseServer(tmp_path / "pg", url)
        backup = _glimpse(server, "db", "backup", str(tmp_path / "x.db"))
        assert backup.returncode == 2 and "pg_dump" in " ".join(backup.stderr.split())
        restore = _glimpse(server, "db", "restore", str(tmp_path / "x.db"))
        assert restore.returncode == 2 and "own tools" in " ".join(restore.stderr.split())


def test_restore_refuses_a_file_that_is_not_a_backup(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path / "node")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 100)
    result = _glimpse(server, "db", "restore", str(junk))
    assert result.returncode == 2 and "not a Glimpse database backup" in " ".join(result.stderr.split())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_purge_removes_old_rows_and_keeps_the_tombstones(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend) if backend != "sqlite" else _nothing() as url:
        server = GlimpseServer(tmp_path / backend, url, extra_conf="delayed_delete = true")
        if url is not None:
            assert server.command("db", "sync").returncode == 0
        server.start()
        try:
            old, recent, pending = (_image(server, tags=["t"], os_distro="d") for _ in range(3))
            for image_id in (old, recent, pending):
                assert httpx.delete(f"{server.url}/v2/images/{image_id}").status_code == 204
            engine = create_engine(url or f"sqlite:///{server.data_dir / 'glimpse.db'}")
            _shift(engine, [pending], timedelta(days=1))  # `pending` stays pending_delete: scrub the other two
            scrub = subprocess.run(
                [GLIMPSE, "scrub", "--config-file", str(server.conf), "--data-dir", str(server.data_dir)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert scrub.returncode == 0, scrub.stdout
            _shift(engine, [old, pending], -timedelta(days=40))
            for image_id in (old, pending):
                assert _rows(engine, image_id)["image_locations"] == 1
            purge = server.command("db", "purge", "--age-in-days", "30", "--max-rows", "1")
            assert purge.returncode == 0, purge.stderr
            assert "Purged 1 row(s) from image_locations" in purge.stdout
            assert _rows(engine, old) == {"images": 1, "image_locations": 0, "image_properties": 0, "image_tags": 0}
            assert _rows(engine, recent)["image_locations"] == 1  # deleted less than 30 days ago
            assert _rows(engine, pending) == {"images": 1, "image_locations": 1, "image_properties": 1,
                                              "image_tags": 1}  # fmt: skip
            again = httpx.post(f"{server.url}/v2/images", json={"id": old, "disk_format": "raw"})
            assert again.status_code == 409  # the tombstone still reserves the id
            bad = server.command("db", "purge", "--age-in-days", "-1")
            assert bad.returncode == 2 and "non-negative" in bad.stderr
            engine.dispose()
        finally:
            server.stop()


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _shift(engine: Engine, ids: list[str], by: timedelta) -> None:
    """Age (or rejuvenate) deleted images: the only honest way to have rows deleted 40 days ago."""
    with engine.begin() as conn:
        for image_id in ids:
            when = conn.execute(text("SELECT deleted_at FROM images WHERE id = :i"), {"i": image_id}).scalar()
            if isinstance(when, str):  # SQLite hands back its text
                when = datetime.fromisoformat(when)
            conn.execute(text("UPDATE images SET deleted_at = :w WHERE id = :i"), {"w": when + by, "i": image_id})


def _rows(engine: Engine, image_id: str) -> dict[str, int]:
    counts = {}
    with engine.begin() as conn:
        for table, key in (("images", "id"), ("image_locations", "image_id"), ("image_properties", "image_id"),
                           ("image_tags", "image_id")):  # fmt: skip
            counts[table] = conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE {key} = :i"), {"i": image_id}
            ).scalar()
    return counts
