"""Run and inspect Alembic migrations programmatically (no alembic.ini needed).

Checking the revision needs no Alembic: a serving process reads the version table with plain SQL
against HEAD below, and loads Alembic (about 9 MiB) only when it migrates. A server migrates in a
forked child process (upgrade_apart), so that it never holds Alembic at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text

from glimpse.forking import single_threaded

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


def upgrade_apart(engine: Engine) -> None:
    """upgrade() to head without this process importing Alembic, its templates and the migration modules (13 MiB
    that would stay in a server migrating its embedded database on its first start, and in every worker it forks):
    in a forked child, when no other thread runs here. Otherwise (a fork would copy locks other threads may hold,
    and a child cannot reach an in-memory database) here, as upgrade() does. MigrationFailed either way, with the
    reason."""
    if _in_memory(engine) or not single_threaded():
        try:
            upgrade(engine)
        except Exception as exc:
            raise MigrationFailed(f"{type(exc).__name__}: {exc}") from exc
        return
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: migrate, say why not if it fails, and leave without the parent's exit handlers
        os.close(reader)
        code = 0
        try:
            engine.dispose(close=False)  # the parent's pooled connections stay the parent's: the child opens its own
            upgrade(engine)
            engine.dispose()
        except BaseException as exc:
            os.write(writer, f"{type(exc).__name__}: {exc}".encode(errors="replace")[:4096])
            code = 1
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        reason = pipe.read().decode(errors="replace")
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise MigrationFailed(reason or f"the migrating process ended with status {code}")


def _in_memory(engine: Engine) -> bool:
    return engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:")


class MigrationFailed(Exception):
    """Migrating the database failed; the message says why."""
