"""The revision a serving process expects is Alembic's head, and a fresh database migrates to it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from glimpse.assembly.database import current_engine
from glimpse.config import load_settings
from glimpse.db import migrate
from glimpse.db.session import make_engine
from glimpse.errors import ConfigError


def test_head_constant_matches_the_migrations() -> None:
    assert migrate.HEAD == migrate.head_revision()


def test_fresh_database_is_not_current_until_upgraded(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert migrate.current_revision(engine) is None
    assert not migrate.is_current(engine)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.HEAD
    assert migrate.is_current(engine)


def test_a_server_migrates_its_embedded_database_without_holding_alembic(tmp_path: Path) -> None:
    """current_engine upgrades a fresh embedded database in a child process: the server (and every worker it
    forks) never imports Alembic. Checked in a fresh interpreter, since this one may have imported it."""
    script = (
        "import sys\n"
        "from glimpse.assembly.database import current_engine\n"
        "from glimpse.config import load_settings\n"
        f"settings = load_settings([], overrides={{'data_dir': {str(tmp_path / 'data')!r}}})\n"
        "current_engine(settings)\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('alembic', 'mako')))\n"
        "print(settings.database_url)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    imported, url = done.stdout.split("\n")[:2]
    assert imported == "[]", imported
    assert migrate.current_revision(make_engine(url)) == migrate.HEAD


def test_a_migration_that_fails_in_the_child_stops_the_server_with_its_reason(tmp_path: Path) -> None:
    settings = load_settings([], overrides={"data_dir": str(tmp_path / "data")})
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:  # a revision this code does not know: a newer Glimpse's database, say
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    with pytest.raises(ConfigError, match=r"could not be migrated to .*9999"):
        current_engine(settings)
    assert migrate.current_revision(engine) == "9999"  # left as it was
