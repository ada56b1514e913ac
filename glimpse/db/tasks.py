"""TaskRepository: tasks as rows, claimed by one process at a time with compare-and-swap and heartbeats.

Each claim raises the task's `generation`; the claimant holds a Fence (task id, generation). Every write
that publishes the task's work calls `hold_claim` in its own transaction: the UPDATE of the task row both
checks the fence and locks the row until commit, so a process that claims the task meanwhile waits for
that commit and then no longer matches (and a fenced-out process never publishes).
"""

from __future__ import annotations

import builtins
import json
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from glimpse.db.models import TaskRow, utcnow
from glimpse.db.session import SessionFactory, rowcount
from glimpse.domain.entities import Fence, Task
from glimpse.errors import ClaimLost, NotFound

TASK_TTL = timedelta(hours=48)


def hold_claim(s: Session, fence: Fence) -> None:
    """In the caller's transaction: check the fence and lock the task row until commit; ClaimLost if gone."""
    result = s.execute(
        update(TaskRow)
        .where(TaskRow.id == fence.task_id, TaskRow.generation == fence.generation, TaskRow.status == "processing")
        .values(heartbeat_at=utcnow())
    )
    if rowcount(result) != 1:
        raise ClaimLost(f"Task {fence.task_id} was taken over by another process; this attempt stops.")


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
        generation=row.generation or 0,
        pinned_node=row.pinned_node,
        heartbeat_at=row.heartbeat_at,
    )


class TaskRepository:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def create(self, task_type: str, owner: str | None, image_id: str | None, task_input: dict[str, Any],
               user_id: str | None, request_id: str | None, pinned_node: str | None = None) -> Task:  # fmt: skip
        """pinned_node: only that process may claim the task; it keeps heartbeat_at fresh while it waits."""
        now = utcnow()
        row = TaskRow(
            id=str(uuid.uuid4()), type=task_type, status="pending", owner=owner, image_id=image_id,
            input=json.dumps(task_input), message="", user_id=user_id, request_id=request_id,
            created_at=now, updated_at=now, generation=0, pinned_node=pinned_node,
            heartbeat_at=now if pinned_node else None,
        )  # fmt: skip
        with self._sessions.begin() as s:
            s.add(row)
        return self.get(row.id)

    def release(self, task_id: str, hold: str, pinned_node: str | None) -> bool:
        """A task created held (pinned to `hold`) may run now: pinned to pinned_node, or free for any worker.
        False when it is no longer held: it was given up meanwhile."""
        with self._sessions.begin() as s:
            released = s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.status == "pending", TaskRow.pinned_node == hold)
                .values(pinned_node=pinned_node, heartbeat_at=utcnow() if pinned_node else None)
            )
            return rowcount(released) == 1

    def get(self, task_id: str) -> Task:
        with self._sessions.begin() as s:
            row = s.get(TaskRow, task_id)
            if row is None:
                raise NotFound(f"Task with the given ID {task_id} not found")
            return _task(row)

    def list(self, owner: str | None = None, image_id: str | None = None, limit: int = 100,
             status: str | None = None, task_type: str | None = None) -> builtins.list[Task]:  # fmt: skip
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
        """Take one pending task, or one whose runner stopped beating; None when there is nothing to do.

        A pinned task is only ever taken by its own process, and never taken over. The UPDATE asks again
        whether the task is free to take: another process (a worker polling in step with this one) may have
        claimed it, or its runner beaten, since it was listed."""
        now = utcnow()
        unpinned = TaskRow.pinned_node.is_(None)
        free = or_(
            (TaskRow.status == "pending") & (unpinned | (TaskRow.pinned_node == node)),
            (TaskRow.status == "processing") & (TaskRow.heartbeat_at < now - stale_after) & unpinned,
        )
        with self._sessions.begin() as s:
            candidates = s.scalars(select(TaskRow.id).where(free).order_by(TaskRow.created_at).limit(5)).all()
        for task_id in candidates:
            with self._sessions.begin() as s:
                claimed = rowcount(
                    s.execute(
                        update(TaskRow)
                        .where(TaskRow.id == task_id, free)
                        .values(
                            status="processing",
                            node=node,
                            heartbeat_at=now,
                            updated_at=now,
                            generation=TaskRow.generation + 1,
                        )
                    )
                )
            if claimed == 1:
                return self.get(task_id)
        return None

    def heartbeat(self, fence: Fence, message: str | None = None) -> bool:
        """Still mine? Refreshes the heartbeat (and the progress message); False when another took it over."""
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if message is not None:
            values["message"] = message
        with self._sessions.begin() as s:
            result = s.execute(
                update(TaskRow)
                .where(
                    TaskRow.id == fence.task_id, TaskRow.generation == fence.generation, TaskRow.status == "processing"
                )
                .values(**values)
            )
            return rowcount(result) == 1

    def touch_pinned(self, node: str) -> None:
        """The pinned process is alive: its waiting tasks must not be given up as orphans."""
        with self._sessions.begin() as s:
            s.execute(
                update(TaskRow)
                .where(TaskRow.pinned_node == node, TaskRow.status == "pending")
                .values(heartbeat_at=utcnow())
            )

    def orphaned_pinned(self, stale_after: timedelta) -> builtins.list[Task]:
        """Pinned tasks whose process stopped beating: nobody else can run them."""
        cutoff = utcnow() - stale_after
        with self._sessions.begin() as s:
            rows = s.scalars(
                select(TaskRow).where(
                    TaskRow.pinned_node.is_not(None),
                    TaskRow.status.in_(("pending", "processing")),
                    TaskRow.heartbeat_at < cutoff,
                )
            )
            return [_task(r) for r in rows]

    def claim_orphan(self, task: Task, node: str) -> Task | None:
        """Claim an orphaned pinned task only to fail it (compare-and-swap on its generation)."""
        now = utcnow()
        with self._sessions.begin() as s:
            claimed = rowcount(
                s.execute(
                    update(TaskRow)
                    .where(
                        TaskRow.id == task.id,
                        TaskRow.generation == task.generation,
                        TaskRow.status == task.status,
                        TaskRow.heartbeat_at == task.heartbeat_at,
                    )
                    .values(
                        status="processing",
                        node=node,
                        heartbeat_at=now,
                        updated_at=now,
                        generation=TaskRow.generation + 1,
                        pinned_node=None,
                    )
                )
            )
        return self.get(task.id) if claimed == 1 else None

    def release_node_prefix(self, prefix: str) -> int:
        """After a restart: the node's running tasks (workers named prefix...) go back to pending (their
        processes are gone: the next claim raises the generation)."""
        with self._sessions.begin() as s:
            result = s.execute(
                update(TaskRow)
                .where(
                    TaskRow.node.startswith(prefix, autoescape=True),
                    TaskRow.status == "processing",
                    TaskRow.pinned_node.is_(None),
                )
                .values(status="pending", node=None, updated_at=utcnow())
            )
            return rowcount(result)

    def pinned_prefix(self, prefix: str) -> builtins.list[Task]:
        """After a restart: pinned tasks of the node's former processes (their tokens died with them)."""
        with self._sessions.begin() as s:
            rows = s.scalars(
                select(TaskRow).where(
                    TaskRow.pinned_node.startswith(prefix, autoescape=True),
                    TaskRow.status.in_(("pending", "processing")),
                )
            )
            return [_task(r) for r in rows]

    def finish(self, fence: Fence, status: str, message: str, result: dict[str, Any]) -> bool:
        """End the task, only while the claim is still this one; False when it was taken over."""
        now = utcnow()
        with self._sessions.begin() as s:
            done = rowcount(
                s.execute(
                    update(TaskRow)
                    .where(TaskRow.id == fence.task_id, TaskRow.generation == fence.generation)
                    .values(
                        status=status,
                        message=message,
                        result=json.dumps(result),
                        updated_at=now,
                        expires_at=now + TASK_TTL,
                    )
                )
            )
        return bool(done == 1)

    def abandon(self, task_id: str, message: str) -> None:
        """A task that never started (its image changed meanwhile) ends as a failure."""
        now = utcnow()
        with self._sessions.begin() as s:
            s.execute(
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.status == "pending")
                .values(status="failure", message=message, updated_at=now, expires_at=now + TASK_TTL)
            )
