"""Run and inspect Alembic migrations programmatically (no alembic.ini needed).

Checking the revision needs no Alembic: a serving process reads the version table with plain SQL
against HEAD below, and loads Alembic (about 9 MiB) only when it migrates.
"""

from __future__ import annotations

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
