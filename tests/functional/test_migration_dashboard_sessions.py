"""Migration 0013 (dashboard sessions) on SQLite, the machine's MariaDB and PostgreSQL: up from 0012, sessions
stored, read, revoked and swept through the repository, down and up again."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from glimpse.db import migrate
from glimpse.db.dashboard_sessions import DashboardSessions
from glimpse.db.models import utcnow
from glimpse.db.session import make_sessionmaker
from glimpse.domain.session_records import StoredSession
from tests.functional.databases import fresh_database
from tests.functional.test_migration_cache_nodes import _alembic


@contextmanager
def _database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'glimpse.db'}"
    else:
        with fresh_database(kind) as url:
            yield url


def _session(key: str, user: str, expires_in: timedelta) -> StoredSession:
    now = utcnow()
    data = {"user_name": user, "project_id": "p", "projects": [{"id": "p", "name": "P"}]}
    return StoredSession(key, data, now + expires_in, now, "uid-" + user, user, "p", "P")


@pytest.mark.parametrize("kind", ["sqlite", "mysql", "postgresql"])
def test_0013_up_use_down_and_up(kind: str, tmp_path: Path) -> None:
    with _database(kind, tmp_path) as url:
        engine = create_engine(url)
        try:
            migrate.upgrade(engine, "0012")
            migrate.upgrade(engine)
            assert migrate.is_current(engine)
            assert "dashboard_sessions" in inspect(engine).get_table_names()
            store = DashboardSessions(make_sessionmaker(engine))
            store.put(_session("a" * 64, "alice", timedelta(hours=1)))
            store.put(_session("b" * 64, "alice", timedelta(hours=1)))
            store.put(_session("c" * 64, "bob", timedelta(hours=1)))
            store.put(_session("d" * 64, "carol", timedelta(seconds=-1)))
            found = store.get("a" * 64)
            assert found is not None and found.data["projects"] == [{"id": "p", "name": "P"}]
            assert found.expires_at > utcnow()  # microseconds kept or not, the expiry is in the future
            assert store.get("d" * 64) is None  # expired: dropped on read
            assert [s.user_name for s in store.active()] == ["alice", "alice", "bob"]
            assert store.delete_user("uid-alice") == 2
            assert store.delete("c" * 64) and not store.delete("c" * 64)
            store.put(_session("e" * 64, "dave", timedelta(seconds=-1)))
            assert store.sweep() == 1 and store.active() == []

            _alembic(engine, "downgrade", "0012")
            assert "dashboard_sessions" not in inspect(engine).get_table_names()
            migrate.upgrade(engine)
            assert DashboardSessions(make_sessionmaker(engine)).active() == []
        finally:
            engine.dispose()
