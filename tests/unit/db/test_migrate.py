"""The revision a serving process expects is Alembic's head, and a fresh database migrates to it."""

from __future__ import annotations

from pathlib import Path

from glimpse.db import migrate
from glimpse.db.session import make_engine


def test_head_constant_matches_the_migrations() -> None:
    assert migrate.HEAD == migrate.head_revision()


def test_fresh_database_is_not_current_until_upgraded(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert migrate.current_revision(engine) is None
    assert not migrate.is_current(engine)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.HEAD
    assert migrate.is_current(engine)
