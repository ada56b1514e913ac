"""Migration 0007 (Glance's cache node tables, the image_locations status index) on the machine's MariaDB and
PostgreSQL: up from 0006 with data in place, down and up again; and on PostgreSQL the scrubber's search for
waiting copies reads that index instead of every image."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, event, inspect, text

from glimpse.db import migrate
from glimpse.db.cache_nodes import CacheNodeRecords
from glimpse.db.scrub_queue import ScrubQueue
from glimpse.db.session import make_sessionmaker
from tests.functional.databases import fresh_database

IMAGE = (
    "INSERT INTO images (id, status, visibility, protected, os_hidden, deleted, created_at, updated_at, revision, "
    "min_disk, min_ram) VALUES (:id, 'active', 'shared', false, false, false, :now, :now, 0, 0, 0)"
)
LOCATION = (
    "INSERT INTO image_locations (image_id, url, meta, status, created_at) "
    "VALUES (:id, 'file:///x', '{}', :status, :now)"
)


def _alembic(engine: Engine, action: str, target: str) -> None:
    cfg = migrate._config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, target)


@pytest.mark.parametrize("kind", ["mysql", "postgresql"])
def test_0007_up_down_and_up_with_data(kind: str) -> None:
    with fresh_database(kind) as url:
        engine = create_engine(url)
        try:
            migrate.upgrade(engine, "0006")
            image_id = str(uuid.uuid4())
            with engine.begin() as conn:
                conn.execute(text(IMAGE), {"id": image_id, "now": "2026-01-01 00:00:00"})
                conn.execute(text(LOCATION), {"id": image_id, "status": "pending_delete", "now": "2026-01-01 00:00:00"})
            migrate.upgrade(engine)
            assert migrate.is_current(engine)
            found = inspect(engine)
            assert {"node_reference", "cached_images"} <= set(found.get_table_names())
            indexes = {ix["name"]: ix["column_names"] for ix in found.get_indexes("image_locations")}
            assert indexes["ix_image_locations_status_image_id"] == ["status", "image_id"]
            unique = {tuple(u["column_names"]) for u in found.get_unique_constraints("cached_images")}
            unique |= {tuple(ix["column_names"]) for ix in found.get_indexes("cached_images") if ix["unique"]}
            assert ("image_id", "node_reference_id") in unique
            records = CacheNodeRecords(make_sessionmaker(engine), "http://node-a:9292")
            records.add(image_id, 42, "0" * 32)
            records.hit(image_id)
            assert records.nodes(image_id) == ["http://node-a:9292"]
            _alembic(engine, "downgrade", "0006")
            assert "cached_images" not in inspect(engine).get_table_names()
            migrate.upgrade(engine)
            assert ScrubQueue(make_sessionmaker(engine)).due(timedelta(0)) == [image_id]
        finally:
            engine.dispose()


def test_the_scrubbers_search_reads_the_status_index_on_postgresql() -> None:
    with fresh_database("postgresql") as url:
        engine = create_engine(url)
        try:
            migrate.upgrade(engine)
            with engine.begin() as conn:  # 20000 live images, 4 of them with a copy waiting for the scrubber
                conn.execute(
                    text(
                        "INSERT INTO images (id, status, visibility, protected, os_hidden, deleted, created_at, "
                        "updated_at, revision, min_disk, min_ram) SELECT md5(g::text)::uuid::text, 'active', 'shared', "
                        "false, false, false, now(), now(), 0, 0, 0 FROM generate_series(1, 20000) g"
                    )
                )
                conn.execute(
                    text(
                        "INSERT INTO image_locations (image_id, url, meta, status, created_at) SELECT "
                        "md5(g::text)::uuid::text, 'file:///x', '{}', CASE WHEN g % 5000 = 0 THEN 'pending_delete' "
                        "ELSE 'active' END, now() FROM generate_series(1, 20000) g"
                    )
                )
                conn.execute(text("ANALYZE"))
            seen: list[tuple[str, Any]] = []

            def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
                if "image_locations" in statement:
                    seen.append((statement, parameters))

            event.listen(engine, "before_cursor_execute", capture)
            assert len(ScrubQueue(make_sessionmaker(engine)).due(timedelta(hours=1))) == 4
            event.remove(engine, "before_cursor_execute", capture)
            [(statement, parameters)] = seen
            with engine.connect() as conn:
                plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
            assert "ix_image_locations_status_image_id" in plan, plan
            assert "Seq Scan" not in plan, plan
        finally:
            engine.dispose()
