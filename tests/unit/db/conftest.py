from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from glimpse.db.migrate import upgrade
from glimpse.db.session import make_engine
from tests.functional.databases import EVERY_DATABASE, fresh_database


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite database at head (a module testing every database names every_engine its engine)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'glimpse.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module", params=EVERY_DATABASE)
def every_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A fresh database at head on SQLite, PostgreSQL and MariaDB in turn, shared by the module's tests."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('db')}/glimpse.db")
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    with fresh_database(request.param) as url:
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()
