from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from glimpse.db.migrate import upgrade
from glimpse.db.session import make_engine


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A fresh SQLite database at head (modules testing every database define their own)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'glimpse.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()
