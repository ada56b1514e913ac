"""Fresh databases on the machine's MariaDB and PostgreSQL servers, one per test run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

# The servers every machine of this project runs on loopback (see the README).
ADMIN_URLS = {
    "mysql": os.environ.get("GLIMPSE_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
    "postgresql": os.environ.get("GLIMPSE_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test"),
}

# The parameters of a fixture run on each database in turn (the markers let a run pick some).
EVERY_DATABASE = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.postgresql),
    pytest.param("mysql", marks=pytest.mark.mysql),
]


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """Create an empty database, yield its URL, drop it afterwards."""
    admin_url = ADMIN_URLS[kind]
    name = f"glimpse_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        raise RuntimeError(
            f"The {kind} server at {admin_url} is not reachable ({exc}); the functional tests need it running."
        ) from exc
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with engine.connect() as conn:
            if kind == "postgresql":
                conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        engine.dispose()
