"""Migration 0010 (the recycle bin's columns and retention table) on the machine's MariaDB and PostgreSQL: up from
0007 with an image in place, the bin at work (delete, list, restore with the former status, retention), down and
up again."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, inspect, text

from glimpse.db import migrate
from glimpse.db.recycle_bin import RecycleBinRepository
from glimpse.db.repositories import ImageRepository
from glimpse.db.scrub_queue import ScrubQueue
from glimpse.db.session import make_sessionmaker
from glimpse.domain.entities import Location
from tests.functional.databases import fresh_database
from tests.functional.test_migration_cache_nodes import IMAGE, _alembic


def _no_check(copies: list[Location]) -> None:
    pass


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_0010_up_down_and_up_with_data(kind: str) -> None:
    with fresh_database(kind) as url:
        engine = create_engine(url)
        try:
            migrate.upgrade(engine, "0007")
            image_id = str(uuid.uuid4())
            with engine.begin() as conn:
                conn.execute(text(IMAGE), {"id": image_id, "now": "2026-01-01 00:00:00"})
                conn.execute(text("UPDATE images SET status = 'deactivated', owner = 'p' WHERE id = :id"),
                             {"id": image_id})  # fmt: skip
            migrate.upgrade(engine)
            assert migrate.is_current(engine)
            found = inspect(engine)
            assert {"bin_expires_at", "status_before_delete"} <= {c["name"] for c in found.get_columns("images")}
            assert "recycle_bin_retention" in found.get_table_names()
            sessions = make_sessionmaker(engine)
            bin_records = RecycleBinRepository(sessions)
            bin_records.set_retention("p", 60)
            assert bin_records.retention("p") == 60
            # The status is copied before it changes (MariaDB's SET sees columns assigned earlier in a statement).
            ImageRepository(sessions).delete(image_id, keep_for=timedelta(hours=1))
            assert [b.former_status for b in bin_records.binned("p", 10)] == ["deactivated"]
            with engine.begin() as conn:  # a deactivated image with no data left: only its record comes back
                conn.execute(text("UPDATE images SET status_before_delete = 'queued' WHERE id = :id"), {"id": image_id})
            assert ScrubQueue(sessions).restore(image_id, timedelta(seconds=30), _no_check, from_bin=True) == "queued"
            _alembic(engine, "downgrade", "0007")
            assert "recycle_bin_retention" not in inspect(engine).get_table_names()
            migrate.upgrade(engine)
            assert migrate.is_current(engine)
        finally:
            engine.dispose()
