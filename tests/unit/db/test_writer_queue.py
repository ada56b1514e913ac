"""SQLite's writers queue on a lock of the process and an flock beside the database, held for a transaction."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from glimpse.db import session
from glimpse.db.session import SerializedSessions, make_engine, make_sessionmaker, read_briefly


def _sessions(path: Path) -> SerializedSessions:
    sessions = make_sessionmaker(make_engine(f"sqlite:///{path}"))
    assert isinstance(sessions, SerializedSessions)
    return sessions


def _lock_taken(lock_path: str) -> bool:
    """From another open file, as another process would: whether the flock is held."""
    fd = os.open(lock_path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_transaction_holds_the_flock_and_releases_it(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path / "glimpse.db")
    lock_path = f"{tmp_path / 'glimpse.db'}-writers.lock"
    with sessions.begin() as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
        assert _lock_taken(lock_path)
    assert not _lock_taken(lock_path)


def test_nested_transactions_of_two_factories_of_one_file_do_not_wait_for_each_other(tmp_path: Path) -> None:
    one, two = _sessions(tmp_path / "glimpse.db"), _sessions(tmp_path / "glimpse.db")
    lock_path = f"{tmp_path / 'glimpse.db'}-writers.lock"
    with one.begin(), two.begin():
        assert _lock_taken(lock_path)
    with one.begin():  # the inner transaction's end left the outer's lock in place
        with two.begin():
            pass
        assert _lock_taken(lock_path)
    assert not _lock_taken(lock_path)


def test_a_read_on_the_event_loop_does_not_queue_behind_other_processes(tmp_path: Path) -> None:
    sessions = _sessions(tmp_path / "glimpse.db")
    lock_path = f"{tmp_path / 'glimpse.db'}-writers.lock"
    with sessions.begin() as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    fd = os.open(lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process's writer
    try:

        def read() -> int:
            with sessions.begin() as s:
                return len(s.execute(text("SELECT x FROM t")).all())

        assert read_briefly(read) == 0
    finally:
        os.close(fd)


def _hold(path: str, ready: multiprocessing.synchronize.Event, done: multiprocessing.synchronize.Event) -> None:
    sessions = _sessions(Path(path))
    with sessions.begin():
        ready.set()
        done.wait(30)


def _count(path: str, times: int) -> None:
    """Transactions that read, then write: each must run alone, or SQLite would refuse the upgrade of its lock."""
    sessions = _sessions(Path(path))
    for _ in range(times):
        with sessions.begin() as s:
            s.execute(text("SELECT count(*) FROM t")).scalar_one()
            s.execute(text("INSERT INTO t VALUES (1)"))


def test_a_forked_process_opens_its_own_lock_file(tmp_path: Path) -> None:
    """The parent's open file is not the child's: their flocks exclude each other."""
    path = tmp_path / "glimpse.db"
    sessions = _sessions(path)
    with sessions.begin() as s:  # the parent opened its lock file before the fork
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    context = multiprocessing.get_context("fork")
    ready, done = context.Event(), context.Event()
    child = context.Process(target=_hold, args=(str(path), ready, done))
    child.start()
    try:
        assert ready.wait(30)
        assert _lock_taken(f"{path}-writers.lock")
        own = sessions._queue._flock._file()  # type: ignore[union-attr]  # the file this process writes through, opened before the fork
        with pytest.raises(BlockingIOError):
            fcntl.flock(own, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        done.set()
        child.join(30)
    assert child.exitcode == 0


def test_a_holder_that_never_lets_go_delays_writers_by_the_busy_timeout_not_forever(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session, "SQLITE_BUSY_WAIT_MS", 300)
    sessions = _sessions(tmp_path / "glimpse.db")
    lock_path = f"{tmp_path / 'glimpse.db'}-writers.lock"
    with sessions.begin() as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    fd = os.open(lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a stopped process's writer
    try:
        started = time.monotonic()
        with sessions.begin() as s:  # goes on without the queue; SQLite's own lock still guards the write
            s.execute(text("INSERT INTO t VALUES (1)"))
        waited = time.monotonic() - started
    finally:
        os.close(fd)
    assert 0.3 <= waited < 5, waited
    # The wait given up on gets the lock once its holder leaves, and lets it go at once: nobody holds it then.
    # (Probing with _lock_taken before that wait has ended would race it: each takes the lock for a moment.)
    flock = sessions._queue._flock
    assert flock is not None
    for _ in range(100):
        if not flock._waiting:
            break
        time.sleep(0.05)
    assert not flock._waiting
    assert not _lock_taken(lock_path)
    with sessions.begin() as s:  # the queue works as before
        assert _lock_taken(lock_path)
        assert s.execute(text("SELECT x FROM t")).scalar_one() == 1
    assert not _lock_taken(lock_path)


def _killed_mid_write(path: str, ready: multiprocessing.synchronize.Event) -> None:
    sessions = _sessions(Path(path))
    with sessions.begin() as s:
        s.execute(text("INSERT INTO t VALUES (2)"))
        ready.set()
        time.sleep(60)  # killed here, the flock and SQLite's lock held, the row not committed


def test_a_writer_killed_with_minus_9_leaves_neither_the_queue_nor_the_database_locked(tmp_path: Path) -> None:
    """The kernel drops an flock with its holder's last descriptor: the next writer goes on at once, not after the
    busy timeout, and finds the database without the killed writer's half-made change."""
    path = tmp_path / "glimpse.db"
    sessions = _sessions(path)
    with sessions.begin() as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    context = multiprocessing.get_context("fork")
    ready = context.Event()
    child = context.Process(target=_killed_mid_write, args=(str(path), ready))
    child.start()
    assert ready.wait(30)
    assert _lock_taken(f"{path}-writers.lock")
    os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]  # started: it has a pid
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    started = time.monotonic()
    with sessions.begin() as s:
        s.execute(text("INSERT INTO t VALUES (1)"))
    assert time.monotonic() - started < session.SQLITE_BUSY_WAIT_MS / 1000 / 2
    assert not _lock_taken(f"{path}-writers.lock")
    with sessions.begin() as s:
        assert s.execute(text("SELECT x FROM t")).scalars().all() == [1]


def test_writers_of_two_processes_take_turns_without_losing_a_write(tmp_path: Path) -> None:
    path = tmp_path / "glimpse.db"
    sessions = _sessions(path)
    with sessions.begin() as s:
        s.execute(text("CREATE TABLE t (x INTEGER)"))
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_count, args=(str(path), 200)) for _ in range(2)]
    for child in children:
        child.start()
    _count(str(path), 200)
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    with sessions.begin() as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar_one() == 600


def test_two_spellings_of_one_file_share_one_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    absolute, relative = _sessions(tmp_path / "glimpse.db"), _sessions(Path("glimpse.db"))
    started = time.monotonic()
    with absolute.begin(), relative.begin():  # nested: the second takes no flock of its own, so it does not wait
        assert _lock_taken(f"{tmp_path / 'glimpse.db'}-writers.lock")
    assert time.monotonic() - started < 5  # two queues would wait for each other's flock for the busy timeout
