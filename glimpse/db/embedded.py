"""The embedded SQLite database's online backup and its restore, and the lock that tells them apart.

Every process that uses the database (`glimpse serve` and each of its workers, `glimpse scrub`) holds a
shared flock on `<database>.serving` for as long as it runs; `glimpse db restore` needs the exclusive
lock, so it refuses while any of them runs and they refuse to start while it works. The kernel drops a
flock with the last descriptor of its holder, so a process killed with -9 leaves no stale state.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from glimpse.errors import ConfigError

_held: list[int] = []  # descriptors of this process's shared locks, open until it exits


def sqlite_path(url: str) -> Path | None:
    """The file of an embedded (file-backed SQLite) database URL, else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database).absolute()


def _lock_file(db: Path) -> Path:
    return db.with_name(db.name + ".serving")


def _holders(lock: Path) -> list[int]:
    """Process ids holding a flock on `lock` (Linux's /proc/locks), for the operator's message."""
    try:
        inode = lock.stat().st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return []
    pids = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            pids.append(int(fields[4]))
    return sorted(set(pids) - {os.getpid()})


def hold_shared(url: str, what: str) -> None:
    """Mark this process as using the embedded database at url until it exits (nothing for other databases)."""
    db = sqlite_path(url)
    if db is None:
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_lock_file(db), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConfigError(
            f"Cannot {what}: `glimpse db restore` is replacing the database {db}; retry when it ends."
        ) from None
    _held.append(fd)


@contextlib.contextmanager
def exclusive(db: Path) -> Iterator[None]:
    fd = os.open(_lock_file(db), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pids = _holders(_lock_file(db))
            who = f" (process {', '.join(map(str, pids))})" if pids else ""
            raise ConfigError(
                f"Refusing to restore: a Glimpse server or scrubber{who} is using the database {db}. Stop it first."
            ) from None
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Copy:
    path: Path
    size: int
    images: int
    revision: str | None


def _check(path: Path) -> Copy:
    """Open a copy read-only and prove it whole: integrity_check, and the tables of a Glimpse database."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise ConfigError(f"{path} is damaged (SQLite integrity_check failed).")
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            images = conn.execute("SELECT count(*) FROM images").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path} is not a Glimpse database backup: {exc}.") from None
    return Copy(path, path.stat().st_size, int(images), revision[0] if revision else None)


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """SQLite's backup API in one step: one read transaction, so one consistent snapshot (in WAL mode the
    writers go on meanwhile); written beside the target, made durable, then renamed into place."""
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    dest = sqlite3.connect(partial)
    try:
        source.backup(dest)
        dest.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    finally:
        dest.close()
    with open(partial, "rb") as f:
        os.fsync(f.fileno())
    os.replace(partial, target)


def _open(db: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(db, timeout=30)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _embedded(url: str, otherwise: str) -> Path:
    """The embedded database's file; for another database, ConfigError(otherwise): never nothing silently."""
    db = sqlite_path(url)
    if db is None:
        raise ConfigError(otherwise)
    return db


def backup(url: str, target: Path) -> Copy:
    """`glimpse db backup`: a consistent copy of the embedded database while the service runs."""
    db = _embedded(
        url,
        "`glimpse db backup` copies the embedded SQLite database; back up MariaDB/MySQL with "
        "mysqldump --single-transaction and PostgreSQL with pg_dump (see the README).",
    )
    if not db.exists():
        raise ConfigError(f"There is no database at {db} to back up.")
    if target.absolute() == db:
        raise ConfigError("The backup file must not be the database itself.")
    target.parent.mkdir(parents=True, exist_ok=True)
    source = _open(db)
    try:
        _copy(source, target)
    finally:
        source.close()
    return _check(target)


def restore(url: str, source_file: Path) -> tuple[Copy, Path | None]:
    """`glimpse db restore`: the backup becomes the embedded database, only while no process uses it.
    The database it replaces is kept beside it (returned) in case the wrong file was restored."""
    db = _embedded(
        url,
        "`glimpse db restore` restores the embedded SQLite database; restore MariaDB/MySQL or PostgreSQL "
        "with their own tools (mysql < dump.sql, pg_restore or psql; see the README).",
    )
    if not source_file.is_file():
        raise ConfigError(f"Backup file {source_file} not found.")
    copy = _check(source_file)
    db.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(db):
        kept = None
        if db.exists():
            kept = db.with_name(f"{db.name}.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%S}")
            current = _open(db)
            try:
                _copy(current, kept)  # reads through the WAL: what a killed server committed is kept too
            finally:
                current.close()
        backup_conn = sqlite3.connect(f"file:{source_file}?mode=ro", uri=True)
        try:
            incoming = db.with_name(db.name + ".restoring")
            _copy(backup_conn, incoming)
        finally:
            backup_conn.close()
        # The old write-ahead log must not be replayed into the restored file.
        for suffix in ("-wal", "-shm"):
            db.with_name(db.name + suffix).unlink(missing_ok=True)
        os.replace(incoming, db)
    return copy, kept
