"""Claiming import tasks (glimpse.db.tasks): one process at a time, even when two look at the same pending task.

Every API process polls for work at the same pace; processes started together (forked workers) poll in step, so
two of them regularly find the same pending task and both try to take it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from glimpse.db.models import TaskRow, utcnow
from glimpse.db.session import SessionFactory, make_sessionmaker
from glimpse.db.tasks import TaskRepository
from glimpse.domain.entities import Task
from tests.unit.db.test_races import _together

STALE = timedelta(seconds=60)


class _Interleaved:
    """Sessions that run `meanwhile` once, just before the transaction numbered `before` (from 1) opens."""

    def __init__(self, sessions: SessionFactory, before: int, meanwhile: Callable[[], object]) -> None:
        self.sessions, self.before, self.meanwhile, self.opened = sessions, before, meanwhile, 0

    def begin(self) -> AbstractContextManager[Session]:
        self.opened += 1
        if self.opened == self.before:
            self.meanwhile()
        return self.sessions.begin()


def _pending(tasks: TaskRepository) -> Task:
    return tasks.create("import", "p1", "image-1", {"method": {"name": "web-download"}}, None, "req-1")


def test_a_task_another_process_claimed_after_it_was_listed_is_left_to_that_process(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    other = TaskRepository(sessions)
    task = _pending(other)
    taken: list[Task | None] = []
    # The first transaction lists the pending task; the other process claims it before the second one takes it.
    late = TaskRepository(_Interleaved(sessions, 2, lambda: taken.append(other.claim("node/2", STALE))))
    assert late.claim("node/1", STALE) is None
    assert taken[0] is not None and taken[0].id == task.id
    now = other.get(task.id)
    assert (now.node, now.generation, now.status) == ("node/2", 1, "processing")


def _claimed_then_quiet(sessions: SessionFactory, tasks: TaskRepository) -> Task:
    """A task claimed by node/1, whose runner then stopped beating for longer than STALE."""
    _pending(tasks)
    first = tasks.claim("node/1", STALE)
    assert first is not None
    with sessions.begin() as s:
        s.execute(update(TaskRow).where(TaskRow.id == first.id).values(heartbeat_at=utcnow() - 2 * STALE))
    return first


def test_a_task_whose_runner_beat_after_it_was_listed_is_not_taken_over(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    tasks = TaskRepository(sessions)
    first = _claimed_then_quiet(sessions, tasks)
    late = TaskRepository(_Interleaved(sessions, 2, lambda: tasks.heartbeat(first.fence)))  # ...and beats again
    assert late.claim("node/2", STALE) is None
    assert tasks.heartbeat(first.fence)  # still the first runner's


def test_a_stale_task_is_taken_over_once(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    tasks = TaskRepository(sessions)
    first = _claimed_then_quiet(sessions, tasks)
    second = tasks.claim("node/2", STALE)
    assert second is not None and second.generation == 2
    assert not tasks.heartbeat(first.fence)  # fenced out
    assert tasks.claim("node/3", STALE) is None


def test_processes_polling_together_each_take_a_task_once(engine: Engine) -> None:
    sessions = make_sessionmaker(engine)
    tasks = TaskRepository(sessions)
    created = {_pending(tasks).id for _ in range(6)}
    claims: dict[str, list[str]] = {}

    def poll(node: str) -> Callable[[], None]:
        def run() -> None:
            repo = TaskRepository(sessions)
            while (task := repo.claim(node, STALE)) is not None:
                claims.setdefault(task.id, []).append(node)

        return run

    assert _together(*(poll(f"node/{n}") for n in range(4))) == []
    assert set(claims) == created
    assert all(len(nodes) == 1 for nodes in claims.values()), claims


def test_a_held_task_waits_for_its_release(engine: Engine) -> None:
    """A task is created held while its request sets the image up: no worker takes it, not even the process that
    holds it; once released it is anyone's (or its pinned process's)."""
    tasks = TaskRepository(make_sessionmaker(engine))
    hold = "node/1/starting"
    free = tasks.create("import", "p1", "image-1", {}, None, "req-1", pinned_node=hold)
    pinned = tasks.create("import", "p1", "image-2", {}, None, "req-2", pinned_node=hold)
    for worker in ("node/1", "node/2"):
        assert tasks.claim(worker, STALE) is None
    assert tasks.release(free.id, hold, None)
    assert tasks.release(pinned.id, hold, "node/1")
    assert not tasks.release(free.id, hold, None)  # released once
    taken = tasks.claim("node/2", STALE)
    assert taken is not None and taken.id == free.id
    assert tasks.claim("node/2", STALE) is None  # the other is node/1's
    mine = tasks.claim("node/1", STALE)
    assert mine is not None and mine.id == pinned.id


def test_a_held_task_given_up_is_not_released(engine: Engine) -> None:
    tasks = TaskRepository(make_sessionmaker(engine))
    hold = "node/1/starting"
    task = tasks.create("import", "p1", "image-1", {}, None, "req-1", pinned_node=hold)
    with make_sessionmaker(engine).begin() as s:
        s.execute(update(TaskRow).where(TaskRow.id == task.id).values(heartbeat_at=utcnow() - 2 * STALE))
    [orphan] = tasks.orphaned_pinned(STALE)
    assert tasks.claim_orphan(orphan, "node/2") is not None
    assert not tasks.release(task.id, hold, None)
    assert tasks.claim("node/3", STALE) is None
