"""The whole app in-process on a fresh SQLite or PostgreSQL database, for the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.testclient import TestClient

from glimpse.app import create_app
from glimpse.config import Settings, load_settings
from glimpse.db import migrate
from glimpse.db.session import make_engine
from tests.functional.databases import fresh_database


@contextmanager
def database(backend: str) -> Iterator[str | None]:
    """None for the embedded SQLite database, else the URL of a fresh, migrated PostgreSQL database."""
    if backend == "sqlite":
        yield None
        return
    with fresh_database(backend) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


def settings_for(data_dir: Path, database_url: str | None, conf: str = "") -> Settings:
    path = data_dir / "glimpse.conf"
    path.write_text(conf + (f"\n[database]\nconnection = {database_url}\n" if database_url else ""))
    return load_settings([str(path)], overrides={"data_dir": str(data_dir)})


@contextmanager
def app_client(settings: Settings) -> Iterator[TestClient]:
    """https: the dashboard's session cookie is Secure. Server errors come back as 500 answers."""
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False, follow_redirects=False) as c:
        yield c
