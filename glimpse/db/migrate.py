"""Run and inspect Alembic migrations programmatically (no alembic.ini needed).

Checking the revision needs no Alembic: a serving process reads the version table with plain SQL
against HEAD below, and loads Alembic (about 9 MiB) only when it migrates. A server migrates in a
child process (upgrade_apart), so that it never holds Alembic at all.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

if TYPE_CHECKING:  # Alembic is imported only to migrate (see above)
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0013"  # the newest file in migrations/versions; a unit test keeps the two in step


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return str(head)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, target: str = "head") -> None:
    from alembic import command

    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def is_current(engine: Engine) -> bool:
    return current_revision(engine) == HEAD


def upgrade_apart(url: str) -> str:
    """upgrade() to head in a child process, whose output is returned: Alembic, its templates and the migration
    modules (13 MiB) would otherwise stay in the server that migrates its embedded database on its first start,
    and in every worker forked from it."""
    done = subprocess.run(
        [sys.executable, "-m", "glimpse.db.migrate", url], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise MigrationFailed(
            done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        )
    return done.stdout


class MigrationFailed(Exception):
    """The child process migrating the database failed; the message is its last line of error output."""


if __name__ == "__main__":
    from glimpse.db.session import make_engine

    upgrade(make_engine(sys.argv[1]))
