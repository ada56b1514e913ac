"""The database as the operator watches it: does it answer, and how long is the queue of import tasks."""

from __future__ import annotations

from sqlalchemy import Engine, func, select, text

from glimpse.db.models import TaskRow, utcnow
from glimpse.domain.entities import TaskQueue


def ping(engine: Engine) -> str:
    """One round trip (SELECT 1) on a connection of the pool; raises SQLAlchemy's error when it fails."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return f"{engine.dialect.name} answers"


def task_queue(engine: Engine) -> TaskQueue:
    """Tasks waiting (pending) and running (processing) in the whole service, and the age of the oldest waiting."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(TaskRow.status, func.count(), func.min(TaskRow.created_at))
            .where(TaskRow.status.in_(("pending", "processing")))
            .group_by(TaskRow.status)
        ).all()
    found = {status: (int(count), oldest) for status, count, oldest in rows}
    pending, oldest = found.get("pending", (0, None))
    age = max(0.0, (utcnow() - oldest).total_seconds()) if oldest is not None else 0.0
    return TaskQueue(pending=pending, processing=found.get("processing", (0, None))[0], oldest_pending_age=age)
