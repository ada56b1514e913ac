"""TaskRepository: tasks as rows, claimed by one process at a time with compare-and-swap and heartbeats."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from glimpse.db.models import TaskRow, utcnow
from glimpse.errors import NotFound

TASK_TTL = timedelta(hours=48)


@dataclass
class Task:
    id: str
    type: str
    status: str
    owner: str | None
    image_id: str | None
    input: dict[str, Any]
    result: dict[str, Any] | None = None
    message: str = ""
    user_id: str | None = None
    request_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    expires_at: datetime | None = None
    node: str | None = field(default=None, repr=False)


def _task(row: TaskRow) -> Task:
    return Task(
        id=row.id,
        type=row.type,
        status=row.status,
        owner=row.owner,
        image_id=row.image_id,
        input=json.loads(row.input),
        result=json.loads(row.result) if row.result else None,
        message=row.message,
        user_id=row.user_id,
        request_id=row.request_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        expires_at=row.expires_at,
        node=row.node,
    )


class TaskRepository:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(self, task_type: str, owner: str | None, image_id: str | None, task_input: dict[str, Any],
               user_id: str | None, request_id: str | None) -> Task:  # fmt: skip
        now = utcnow()
        row = TaskRow(
            id=str(uuid.uuid4()), type=task_type, status="pending", owner=owner, image_id=image_id,
            input=json.dumps(task_input), message="", user_id=user_id, request_id=request_id,
            created_at=now, updated_at=now,
        )  # fmt: skip
        with self._sessions.begin() as s:
            s.add(row)
        return self.get(row.id)

    def get(self, task_id: str) -> Task:
        with self._sessions.begin() as s:
            row = s.get(TaskRow, task_id)
            if row is None:
                raise NotFound(f"Task with the given ID {task_id} not found")
            return _task(row)

    def list(self, owner: str | None = None, image_id: str | None = None, limit: int = 100,
             status: str | None = None, task_type: str | None = None) -> list[Task]:  # fmt: skip
        query = select(TaskRow).order_by(TaskRow.created_at.desc(), TaskRow.id.desc()).limit(limit)
        if owner is not None:
            query = query.where(TaskRow.owner == owner)
        if image_id is not None:
            query = query.where(TaskRow.image_id == image_id)
        if status is not None:
            query = query.where(TaskRow.status == status)
        if task_type is not None:
            query = query.where(TaskRow.type == task_type)
        with self._sessions.begin() as s:
            return [_task(r) for r in s.scalars(query)]

    def claim(self, node: str, stale_after: timedelta) -> Task | None:
        """Take one pending task, or one whose runner stopped beating; None when there is nothing to do."""
        now = utcnow()
        with self._sessions.begin() as s:
            candidates = s.scalars(
                select(TaskRow.id)
                .where(
                    or_(
                        TaskRow.status == "pending",
                        (TaskRow.status == "processing") & (TaskRow.heartbeat_at < now - stale_after),
                    )
                )
                .order_by(TaskRow.created_at)
                .limit(5)
            ).all()
        for task_id in candidates:
            with self._sessions.begin() as s:
                row = s.get(TaskRow, task_id)
                if row is None:
                    continue
                claimed = s.execute(
                    update(TaskRow)
                    .where(TaskRow.id == task_id, TaskRow.status == row.status, TaskRow.updated_at == row.updated_at)
                    .values(status="processing", node=node, heartbeat_at=now, updated_at=now)
                ).rowcount  # type: ignore[attr-defined]
            if claimed == 1:
                return self.get(task_id)
        return None

    def heartbeat(self, task_id: str, node: str, message: str | None = None) -> bool:
        """Still mine? Refreshes the heartbeat (and the progress message); False when another took it over."""
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if message is not None:
            values["message"] = message
        with self._sessions.begin() as s:
            result = s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.node == node, TaskRow.status == "processing")
                .values(**values)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def release_node_prefix(self, prefix: str) -> int:
        """After a restart: the node's running tasks (workers named prefix...) go back to pending."""
        with self._sessions.begin() as s:
            result = s.execute(
                update(TaskRow)
                .where(TaskRow.node.startswith(prefix, autoescape=True), TaskRow.status == "processing")
                .values(status="pending", node=None, updated_at=utcnow())
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def finish(self, task_id: str, node: str, status: str, message: str, result: dict[str, Any]) -> None:
        now = utcnow()
        with self._sessions.begin() as s:
            s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.node == node)
                .values(
                    status=status, message=message, result=json.dumps(result), updated_at=now, expires_at=now + TASK_TTL
                )
            )

    def abandon(self, task_id: str, message: str) -> None:
        """A task that never started (its image changed meanwhile) ends as a failure."""
        now = utcnow()
        with self._sessions.begin() as s:
            s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.status == "pending")
                .values(status="failure", message=message, updated_at=now, expires_at=now + TASK_TTL)
            )
