"""Creates on SQLite run on the event loop when the writers' queue is free (api/deps.write): a write that would wait
there longer than briefly starts again in a thread, and one that has committed is never run twice."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import make_url, text
from starlette.testclient import TestClient

from glimpse.api import deps
from glimpse.app import build_services, create_app
from glimpse.db.session import LockedOut, SerializedSessions, make_engine, make_sessionmaker, write_briefly
from glimpse.domain.entities import LIMIT_NAMES, ProjectLimits
from tests.integration.inprocess import app_client, settings_for

IMAGE = {"name": "x", "disk_format": "raw", "container_format": "bare"}
NO_REMOTE_CHECKS = SimpleNamespace(calls_out=False)  # a policy without http: rules
REQUEST = SimpleNamespace(
    app=SimpleNamespace(state=SimpleNamespace(inline_writes=(write_briefly, LockedOut), policy=NO_REMOTE_CHECKS))
)


def _sessions(path: Path) -> SerializedSessions:
    sessions = make_sessionmaker(make_engine(f"sqlite:///{path}"))
    assert isinstance(sessions, SerializedSessions)
    with sessions.begin() as s:
        s.execute(text("CREATE TABLE t (v TEXT)"))
    return sessions


def _rows(sessions: SerializedSessions) -> list[str]:
    with sessions.begin() as s:
        return [str(v) for v in s.execute(text("SELECT v FROM t ORDER BY rowid")).scalars()]


class OtherProcess:
    """The writers' flock taken through a file of its own, as another worker's transaction holds it."""

    def __init__(self, database: Path) -> None:
        self.fd = os.open(f"{database}-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def release(self) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def _write_while_the_loop_ticks(func: Callable[[], Any], release_after: float, release: Callable[[], None]) -> int:
    """deps.write(func) from an event loop that `release` frees after `release_after` s; how often the loop ticked."""

    async def run() -> int:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        asyncio.get_running_loop().call_later(release_after, release)
        try:
            await deps.write(REQUEST, func)  # type: ignore[arg-type]
        finally:
            ticker.cancel()
        return ticks

    return asyncio.run(run())


def test_a_write_that_finds_another_process_writing_goes_to_a_thread_once(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path / "glimpse.db")
    calls: list[str] = []

    def insert() -> None:
        calls.append(threading.current_thread().name)
        with sessions.begin() as s:
            s.execute(text("INSERT INTO t VALUES ('one')"))

    other = OtherProcess(tmp_path / "glimpse.db")
    ticks = _write_while_the_loop_ticks(insert, 0.5, other.release)
    assert _rows(sessions) == ["one"]
    assert len(calls) == 2 and calls[0] == "MainThread" and calls[1] != "MainThread"  # tried here, then a thread
    assert ticks >= 20, ticks  # the event loop went on while the write waited


def test_a_write_that_finds_another_thread_writing_goes_to_a_thread(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path / "glimpse.db")
    holding, release = threading.Event(), threading.Event()

    def long_transaction() -> None:  # a transfer's or a background worker's, in this process
        with sessions.begin() as s:
            s.execute(text("INSERT INTO t VALUES ('first')"))
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=long_transaction)
    holder.start()
    holding.wait(10)

    def insert() -> None:
        with sessions.begin() as s:
            s.execute(text("INSERT INTO t VALUES ('second')"))

    ticks = _write_while_the_loop_ticks(insert, 0.5, release.set)
    holder.join(10)
    assert _rows(sessions) == ["first", "second"]
    assert ticks >= 20, ticks


def test_a_write_that_sqlite_locks_out_goes_to_a_thread(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path / "glimpse.db")
    outsider = sqlite3.connect(tmp_path / "glimpse.db", isolation_level=None)  # an operator's shell: no flock
    outsider.execute("BEGIN IMMEDIATE")

    def insert() -> None:
        with sessions.begin() as s:
            s.execute(text("INSERT INTO t VALUES ('one')"))

    def leave() -> None:
        outsider.execute("ROLLBACK")
        outsider.close()

    ticks = _write_while_the_loop_ticks(insert, 0.5, leave)
    assert _rows(sessions) == ["one"]
    assert ticks >= 20, ticks


def test_a_write_that_committed_finishes_where_it_runs_and_is_not_run_again(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path / "glimpse.db")
    calls = 0
    other: list[OtherProcess] = []

    def two_transactions() -> None:  # a create, then its event's outbox row
        nonlocal calls
        calls += 1
        with sessions.begin() as s:
            s.execute(text("INSERT INTO t VALUES ('image')"))
        other.append(OtherProcess(tmp_path / "glimpse.db"))  # the other worker writes in between
        threading.Timer(0.3, other[0].release).start()
        with sessions.begin() as s:
            s.execute(text("INSERT INTO t VALUES ('event')"))

    assert write_briefly(two_transactions) is None
    assert calls == 1
    assert _rows(sessions) == ["image", "event"]  # the second waited for the other process, as in a thread


def test_a_write_locked_out_after_its_commit_is_an_error_not_a_retry(tmp_path: Path) -> None:
    calls = 0

    def commits_then_locked_out() -> None:
        nonlocal calls
        calls += 1
        sessions = _sessions(tmp_path / "glimpse.db")  # CREATE TABLE commits
        assert sessions is not None
        raise LockedOut("a later wait failed")

    with pytest.raises(RuntimeError):
        asyncio.run(deps.write(REQUEST, commits_then_locked_out))  # type: ignore[arg-type]
    assert calls == 1


def test_a_create_waits_for_the_other_worker_and_stores_one_image(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, None)
    with app_client(settings) as client:
        assert client.app.state.inline_writes  # type: ignore[attr-defined]
        database = make_url(settings.database_url).database
        assert database
        other = OtherProcess(Path(database))
        threading.Timer(0.5, other.release).start()
        created = client.post("/v2/images", json=IMAGE)
        assert created.status_code == 201, created.text
        assert client.post("/v2/images", json=IMAGE).status_code == 201  # the queue is free: on the loop
        listed = [i["id"] for i in client.get("/v2/images").json()["images"]]
        assert len(listed) == 2 and created.json()["id"] in listed  # the create waited, was not stored twice


def test_a_create_that_may_ask_keystone_for_limits_keeps_the_thread(tmp_path: Path) -> None:
    """With unified limits a create may ask Keystone (a remote call on a cache miss): never on the event loop."""
    settings = settings_for(tmp_path, None)
    services = build_services(settings)
    asked_from: list[str] = []

    def keystone_limits(project_id: str) -> ProjectLimits:
        asked_from.append(threading.current_thread().name)
        return ProjectLimits(**dict.fromkeys(LIMIT_NAMES))

    services.quotas.external_limits = keystone_limits
    with TestClient(create_app(settings, services)) as client:
        assert client.app.state.inline_writes is None  # type: ignore[attr-defined]
        loop_thread = client.portal.call(lambda: threading.current_thread().name)  # type: ignore[union-attr]
        assert client.post("/v2/images", json=IMAGE, headers={"X-Project-Id": "p1"}).status_code == 201
    assert asked_from and loop_thread not in asked_from
