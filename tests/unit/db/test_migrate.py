"""The revision a serving process expects is Alembic's head, and a fresh database migrates to it."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

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


def _in_a_fresh_interpreter(data_dir: Path) -> list[str]:
    """current_engine on the embedded database in data_dir, in a new single-threaded process (as `glimpse serve`
    starts): what it printed, the Alembic modules it ended up holding first."""
    script = (
        "import sys\n"
        "from glimpse.assembly.database import current_engine\n"
        "from glimpse.config import load_settings\n"
        "from glimpse.errors import ConfigError\n"
        f"settings = load_settings([], overrides={{'data_dir': {str(data_dir)!r}}})\n"
        "try:\n"
        "    current_engine(settings)\n"
        "    outcome = 'migrated'\n"
        "except ConfigError as exc:\n"
        "    outcome = exc.message\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('alembic', 'mako')))\n"
        "print(outcome)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def _newer_database(data_dir: Path) -> Engine:
    """An embedded database at a revision this code does not know (a newer Glimpse's, say)."""
    engine = make_engine(load_settings([], overrides={"data_dir": str(data_dir)}).database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    return engine


def test_a_server_migrates_its_embedded_database_without_holding_alembic(tmp_path: Path) -> None:
    """A single-threaded server upgrades a fresh embedded database in a forked child: neither it nor a worker it
    forks holds Alembic afterwards."""
    assert _in_a_fresh_interpreter(tmp_path / "data") == ["[]", "migrated"]
    url = load_settings([], overrides={"data_dir": str(tmp_path / "data")}).database_url
    assert migrate.current_revision(make_engine(url)) == migrate.HEAD


def test_a_migration_that_fails_stops_the_server_with_its_reason(tmp_path: Path) -> None:
    """In the forked child (a fresh interpreter) as in a process where another thread runs (no fork: there),
    a failed migration is a ConfigError saying why, and the database stays as it was."""
    engine = _newer_database(tmp_path / "forked")
    imported, outcome = _in_a_fresh_interpreter(tmp_path / "forked")
    assert imported == "[]" and re.search(r"could not be migrated to .*9999", outcome), outcome
    assert migrate.current_revision(engine) == "9999"
    engine = _newer_database(tmp_path / "here")
    release = threading.Event()
    other = threading.Thread(target=release.wait)  # another thread runs: no fork
    other.start()
    try:
        with pytest.raises(ConfigError, match=r"could not be migrated to .*9999"):
            current_engine(load_settings([], overrides={"data_dir": str(tmp_path / "here")}))
    finally:
        release.set()
        other.join()
    assert migrate.current_revision(engine) == "9999"
