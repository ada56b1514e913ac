"""Engine and session factory for SQLite (embedded default), MariaDB/MySQL and PostgreSQL."""

from __future__ import annotations

import fcntl
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ParamSpec, Protocol, TypeVar

from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from glimpse.db import audit_hook
from glimpse.errors import ConfigError
from glimpse.extras import missing_message

# anyio's default thread limiter: requests run no more reads at once than that. Beyond it (transfer threads,
# background workers), a connection is opened for the moment rather than waited for.
SQLITE_POOL_SIZE = 40


# How long a connection waits for a lock another holds, in ms: a writer queues for up to 30 s. A read on the event
# loop (api/deps.read) waits 20 ms at most and then moves to a thread: in WAL mode readers wait for no writer, but a
# database in recovery after a crash or held by a connection in exclusive locking mode (an operator's sqlite3 shell)
# blocks them too, and 30 s on the event loop would stall every request of the worker.
SQLITE_BUSY_WAIT_MS = 30000
SQLITE_BRIEF_WAIT_MS = 20
_brief_waits: ContextVar[bool] = ContextVar("glimpse_sqlite_brief_waits", default=False)


P = ParamSpec("P")
T = TypeVar("T")


class LockedOut(Exception):
    """A read or write on the event loop found the database locked for longer than it may wait there."""


class _InlineWrite:
    """A write_briefly call: whether anything it wrote has committed (then it can no longer start again)."""

    committed = False


_inline_write: ContextVar[_InlineWrite | None] = ContextVar("glimpse_sqlite_inline_write", default=None)


def read_briefly(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """func, its SQLite connections waiting SQLITE_BRIEF_WAIT_MS at most for a lock; LockedOut after that."""
    token = _brief_waits.set(True)
    try:
        return func(*args, **kwargs)
    except DBAPIError as exc:
        if _locked_out(exc):
            raise LockedOut(str(exc.orig)) from exc
        raise
    finally:
        _brief_waits.reset(token)


def write_briefly(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """func, which writes, called where its caller runs (the event loop), its transactions waiting
    SQLITE_BRIEF_WAIT_MS at most for the writers' queue and SQLite's lock until the first of them commits; LockedOut
    when one waited longer, nothing written: the caller runs func again in a thread. After a commit func must finish
    here, so a later transaction of it (a webhook's outbox row) waits as long as it would in a thread."""
    call = _InlineWrite()
    token = _inline_write.set(call)
    try:
        return func(*args, **kwargs)
    except DBAPIError as exc:
        if _locked_out(exc) and not call.committed:
            raise LockedOut(str(exc.orig)) from exc
        raise
    except LockedOut:
        if call.committed:
            raise RuntimeError("a write on the event loop was locked out after its first commit") from None
        raise
    finally:
        _inline_write.reset(token)


def _waits_briefly() -> bool:
    """Whether this thread's SQLite waits are the brief ones: a read on the event loop, or a write on it that has
    committed nothing yet."""
    if _brief_waits.get():
        return True
    call = _inline_write.get()
    return call is not None and not call.committed


def _note_commit(_conn: Any) -> None:
    call = _inline_write.get()
    if call is not None:
        call.committed = True


def _locked_out(exc: DBAPIError) -> bool:
    """Whether SQLite gave up on a lock (SQLITE_BUSY, SQLITE_LOCKED and their extended codes)."""
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return isinstance(exc.orig, sqlite3.OperationalError) and code is not None and code & 0xFF in (5, 6)


def _set_busy_wait(dbapi_conn: Any, record: Any) -> None:
    wait = SQLITE_BRIEF_WAIT_MS if _waits_briefly() else SQLITE_BUSY_WAIT_MS
    if record.info.get("busy_wait_ms") != wait:  # one PRAGMA when a pooled connection changes hands, not per read
        dbapi_conn.execute(f"PRAGMA busy_timeout={wait}")
        record.info["busy_wait_ms"] = wait


def _sqlite_pragmas(dbapi_conn: Any, record: Any) -> None:
    _set_busy_wait(dbapi_conn, record)  # first: switching to WAL below takes a lock too
    cur = dbapi_conn.cursor()
    # WAL lets readers go on while one writer commits; busy_timeout queues writers instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    _set_busy_wait(dbapi_conn, record)


CONNECT_TIMEOUT = 10  # seconds to open a connection to a database server
# A connection whose server vanished without closing it (its host gone, a failover moving the address, a network cut)
# is given up after about DEAD_PEER seconds: by default the kernel resends a query for 15 minutes, and checks an idle
# connection after 2 hours, holding the request (and pool_pre_ping's check) all that time. TCP keepalives find a
# silent peer (a live server answers them even while a query runs long); TCP_USER_TIMEOUT ends a send nobody
# acknowledges.
DEAD_PEER = 30
_KEEPALIVE = {"keepalives_idle": DEAD_PEER // 3, "keepalives_interval": DEAD_PEER // 6, "keepalives_count": 4}


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        pool: dict[str, int] = {}
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            # SQLAlchemy's default pool keeps 5 connections: a sixth concurrent read (16 clients on one worker)
            # opened a new connection, ran the pragmas below and closed it again, a tenth of a list's cost. Keeping
            # as many as the thread pool runs at once costs a few KiB each; a connection's page cache grows only
            # with what it reads (2 MiB at most, SQLite's default cache_size).
            pool = {"pool_size": SQLITE_POOL_SIZE, "max_overflow": -1}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "checkout", _sqlite_checkout)
        event.listen(engine, "commit", _note_commit)
        return engine
    # A server that accepts connections and never answers (hung, or a network cut half-way) must not hold every
    # request for ever: libpq waits for ever by default, and PyMySQL bounds the TCP connect but not the handshake
    # that follows (its read timeout, None by default, which is put back once connected: queries may be long).
    connect: dict[str, int] = {}
    bounded_handshake = False
    if parsed.get_backend_name() == "postgresql":
        # libpq's own parameters; any of them in the URL's query takes precedence
        libpq = {"connect_timeout": CONNECT_TIMEOUT, "keepalives": 1, **_KEEPALIVE}
        libpq["tcp_user_timeout"] = DEAD_PEER * 1000  # milliseconds
        connect.update({k: v for k, v in libpq.items() if k not in parsed.query})
    if parsed.get_driver_name() == "pymysql" and "read_timeout" not in parsed.query:
        connect["read_timeout"] = CONNECT_TIMEOUT
        bounded_handshake = True
    try:
        engine = create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_recycle=3600, connect_args=connect
        )
    except ImportError as exc:  # the URL's driver is an extra of the glimpse package
        module = (exc.name or "").split(".")[0]
        raise ConfigError(missing_message(module, f"[database] connection = {parsed.drivername}://...")) from exc
    if bounded_handshake:
        event.listen(engine, "connect", _unbounded_reads)
    if parsed.get_driver_name() == "pymysql":
        event.listen(engine, "connect", _dead_peer_found)
    return engine


def _unbounded_reads(dbapi_connection: Any, record: object) -> None:
    """PyMySQL, once connected: reads wait as long as the query takes again (the handshake had CONNECT_TIMEOUT)."""
    dbapi_connection._read_timeout = None


def _dead_peer_found(dbapi_connection: Any, record: object) -> None:
    """PyMySQL turns keepalives on but leaves their timing (and TCP_USER_TIMEOUT) to the kernel's defaults: set
    on its socket what libpq's parameters set for PostgreSQL. Not for a Unix socket, which has no peer to lose."""
    sock = getattr(dbapi_connection, "_sock", None)
    if not isinstance(sock, socket.socket) or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, _KEEPALIVE["keepalives_idle"])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, _KEEPALIVE["keepalives_interval"])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, _KEEPALIVE["keepalives_count"])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, DEAD_PEER * 1000)


class SessionFactory(Protocol):
    """What the repositories need of a session factory: SQLAlchemy's sessionmaker or SerializedSessions."""

    def begin(self) -> AbstractContextManager[Session]: ...

    def __call__(self) -> Session: ...


class _Flock:
    """An flock on a file beside the database, taken with a wait bounded by SQLite's busy timeout.

    A holder that never lets go (a stopped process, a stuck transaction) must leave the other processes' writers to
    SQLite's own timeout and its error, not hang them. The kernel's wait cannot be bounded without a signal, and
    polling it lets the lock go round the other processes for milliseconds at a time (create's p99 doubled), so
    the blocking wait runs in a thread of its own that the writer waits for with a timeout; a wait given up on
    lets the lock go as soon as it gets it. Only the thread holding the process's RLock calls take and release."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._pid = 0

    def _file(self) -> int:
        """The lock file, opened in each process: an flock belongs to an open file, which a fork would share."""
        if self._pid != os.getpid():
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
            self._changed = threading.Condition()
            self._held = False  # this process has the lock
            self._wanted = False  # a writer waits for it
            self._waiting = False  # a thread is blocked in flock for it
        return self._fd

    def take(self, timeout: float) -> bool:
        fd = self._file()
        with self._changed:
            if not self._waiting:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self._held = True
                    return True
                except BlockingIOError:
                    self._waiting = True
                    threading.Thread(target=self._wait, args=(fd,), name="glimpse-sqlite-writers", daemon=True).start()
            self._wanted = True
            if not self._changed.wait_for(lambda: self._held, timeout):
                self._wanted = False
            return self._held

    def _wait(self, fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with self._changed:
            self._waiting = False
            if self._wanted:
                self._held = True
                self._changed.notify_all()
            else:  # its writer went on without it
                fcntl.flock(fd, fcntl.LOCK_UN)

    def release(self) -> None:
        with self._changed:
            self._held = self._wanted = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class _WriterQueue:
    """The writers of one SQLite file, queued: an RLock for the threads of this process, and an flock on a file
    beside the database for the processes (the forked workers), held together for a whole transaction.

    Without the flock, a worker whose transaction found the other worker's write under way was left to SQLite's
    busy handler, which sleeps in steps of 1 to 100 ms and tries again: the other worker's commit goes by
    unnoticed until the sleep ends. The flock wakes the next writer when the lock is released."""

    def __init__(self, lock_path: str | None) -> None:
        self.lock = threading.RLock()
        self._flock = _Flock(lock_path) if lock_path is not None else None
        self._depth = 0  # changed only by the thread holding self.lock

    @contextmanager
    def held(self) -> Iterator[None]:
        brief = _waits_briefly()
        if not self.lock.acquire(timeout=SQLITE_BRIEF_WAIT_MS / 1000 if brief else -1):
            raise LockedOut("Another thread of this process is writing to the database.")
        try:
            self._depth += 1
            try:
                # A read on the event loop (read_briefly) does not queue behind the other processes' writers: it
                # must not wait there, and SQLite's own lock still keeps a write of it safe.
                flock = self._flock if self._depth == 1 and not _brief_waits.get() else None
                wait_ms = SQLITE_BRIEF_WAIT_MS if brief else SQLITE_BUSY_WAIT_MS
                queued = flock is not None and flock.take(wait_ms / 1000)
                if flock is not None and not queued and brief:  # a write on the event loop goes to a thread
                    raise LockedOut("Another process is writing to the database.")
                try:
                    yield
                finally:
                    if queued:
                        assert flock is not None
                        flock.release()
            finally:
                self._depth -= 1
        finally:
            self.lock.release()


_queues: dict[str | None, _WriterQueue] = {}
_queues_lock = threading.Lock()


def _writer_queue(database: str | None) -> _WriterQueue:
    """One queue per database file in a process: every session factory of the file shares it, so one thread's
    transactions never wait for each other's flock (two open files of one process exclude each other)."""
    # The file's real path: two spellings of one file (relative, through a symlink) must share one queue.
    lock_path = f"{os.path.realpath(database)}-writers.lock" if database and database != ":memory:" else None
    with _queues_lock:
        queue = _queues.get(lock_path)
        if queue is None:
            queue = _queues[lock_path] = _WriterQueue(lock_path)
        return queue


class SerializedSessions:
    """Transactions queued on a lock, for SQLite: the process's threads and the other processes' (_WriterQueue).

    SQLite admits one writer at a time; left to itself, a writer that finds the database busy sleeps in
    growing steps, which under a few dozen concurrent requests turns into second-long tails. Queuing
    instead keeps every transaction (a few milliseconds each) in line.
    """

    def __init__(self, maker: sessionmaker[Session], database: str | None = None) -> None:
        self._maker = maker
        self._queue = _writer_queue(database) if database else _WriterQueue(None)

    @contextmanager
    def begin(self) -> Iterator[Session]:
        with self._queue.held(), self._maker.begin() as session:
            yield session

    def __call__(self) -> Session:
        return self._maker()


def engine_of(sessions: SessionFactory) -> Engine:
    """The engine a session factory's sessions are bound to: reads take a connection of it directly, which costs
    a fraction of a Session's set-up and commit (and, on SQLite's WAL, needs no place in the writers' queue)."""
    maker = sessions._maker if isinstance(sessions, SerializedSessions) else sessions
    bind = getattr(maker, "kw", {}).get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("the session factory is not bound to an engine")
    return bind


def make_sessionmaker(engine: Engine) -> SessionFactory:
    maker = sessionmaker(bind=engine, expire_on_commit=False)
    audit_hook.install(maker)  # a change announced to the audit log commits with its entry
    if engine.dialect.name == "sqlite":
        return SerializedSessions(maker, engine.url.database)
    return maker


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched. Session.execute returns a CursorResult for them but is typed as
    returning any Result, which has no rowcount."""
    assert isinstance(result, CursorResult)
    return result.rowcount


# Errors after which the database rolled the whole transaction back and running it again may succeed: MariaDB's
# deadlock (1213), lock wait timeout (1205) and the savepoint a deadlock took with it (1305); PostgreSQL's
# deadlock_detected and serialization_failure.
_TRANSIENT_MYSQL = {1205, 1213, 1305}
_TRANSIENT_PG = {"40P01", "40001"}


def unreachable(exc: BaseException) -> bool:
    """A database server that cannot be reached or dropped the connection (stopped, restarting, failing over, a
    network cut): nothing is wrong with the request, which may succeed once the server is back (pool_pre_ping then
    replaces the dead connections). SQLite's own errors are not this: its file is always there."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, OperationalError) or isinstance(exc.orig, sqlite3.Error):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is not None:  # PostgreSQL: a connection exception (class 08), shutting down, too many clients
        return bool(sqlstate[:2] == "08" or sqlstate in _AWAY_PG)
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    if isinstance(code, int):  # MariaDB's number: a deadlock or a lock wait is no outage
        return code in _AWAY_MYSQL
    return True  # no server's code at all: the connection itself failed (psycopg's connect errors)


# MariaDB: too many connections, shutting down, cannot connect (socket, TCP), gone away, lost during a query, lost
# reading the handshake. PostgreSQL: shutting down (admin, crash), cannot connect now, too many connections.
_AWAY_MYSQL = {1040, 1053, 2002, 2003, 2006, 2013, 2055}
_AWAY_PG = {"57P01", "57P02", "57P03", "53300"}


def transient(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "args", (None,))[0] if orig is not None and getattr(orig, "args", None) else None
    return code in _TRANSIENT_MYSQL or getattr(orig, "sqlstate", None) in _TRANSIENT_PG
