"""The connection pool measured through SQLAlchemy's pool events: connections open and checked out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event

from glimpse.metrics.instruments import Metrics


def instrument_pool(engine: Engine, metrics: Metrics) -> None:
    pool: Any = engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", 0)
    if callable(size):
        metrics.db_capacity.inc(size() + max(0, overflow))
    # Connections the pool made before it was measured (the schema check at start-up).
    idle, busy = getattr(pool, "checkedin", None), getattr(pool, "checkedout", None)
    if callable(idle) and callable(busy):
        metrics.db_open.inc(idle() + busy())
        metrics.db_in_use.inc(busy())

    def opened(*_: object) -> None:
        metrics.db_open.inc()

    def closed(*_: object) -> None:
        metrics.db_open.dec()

    def checked_out(*_: object) -> None:
        metrics.db_in_use.inc()

    def checked_in(*_: object) -> None:
        metrics.db_in_use.dec()

    event.listen(engine, "connect", opened)
    event.listen(engine, "close", closed)
    event.listen(engine, "close_detached", closed)
    event.listen(engine, "checkout", checked_out)
    event.listen(engine, "checkin", checked_in)
