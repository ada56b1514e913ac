"""[database]: where the data lives (oslo.db's option name); without it, the embedded SQLite in data_dir."""

from __future__ import annotations

from pathlib import Path

from oslo_config import cfg

DATABASE_OPTS: list[cfg.Opt] = [
    cfg.StrOpt("connection", secret=True, help="SQLAlchemy URL of the database."),
]


def database_url(connection: str | None, data_dir: Path) -> str:
    return connection or f"sqlite:///{(data_dir / 'glimpse.db').absolute()}"
