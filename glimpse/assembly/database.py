"""The configured database's engine, and its schema brought to (or checked at) the head revision."""

from __future__ import annotations

from sqlalchemy import Engine

from glimpse.config import Settings
from glimpse.db import migrate
from glimpse.db.session import make_engine
from glimpse.errors import ConfigError


def sync_database(settings: Settings) -> str | None:
    """`glimpse db sync`: migrate the configured database to the head revision; returns that revision."""
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    return migrate.current_revision(engine)


def database_revision(settings: Settings) -> str | None:
    """`glimpse db version`: the configured database's schema revision (None before any migration)."""
    return migrate.current_revision(make_engine(settings.database_url))


def current_engine(settings: Settings, *, migrate_embedded: bool = True) -> Engine:
    """The engine of the configured database, whose schema must be at head (the embedded one is upgraded)."""
    engine = make_engine(settings.database_url)
    if not migrate.is_current(engine):
        if settings.embedded_database and migrate_embedded:
            try:
                migrate.upgrade_apart(engine)
            except migrate.MigrationFailed as exc:
                raise ConfigError(f"The embedded database could not be migrated to {migrate.HEAD}: {exc}") from exc
        else:
            raise ConfigError(
                f"The database is at revision {migrate.current_revision(engine) or 'none'}, "
                f"not {migrate.head_revision()}: run 'glimpse db sync' first."
            )
    return engine
