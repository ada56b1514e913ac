"""The cache's records in the node's SQLite file (Glance's image_cache_sqlite_db): which copies were verified, with
the identity of the file that passed (inode, size, modification time), their hits and last use, and the node's
hit and miss counters.

SQLite in WAL mode with a busy timeout serves every process of the node; each call opens its own connection, so
threads and forked workers share nothing. A record is the only thing that vouches for a file: a file without one,
or one whose identity changed since it was verified, is never served.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from glimpse.domain.entities import CachedImage

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cached_images (
        image_id TEXT PRIMARY KEY, size INTEGER NOT NULL, checksum TEXT, hash_value TEXT,
        inode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
        last_modified REAL NOT NULL, last_accessed REAL NOT NULL, hits INTEGER NOT NULL DEFAULT 0)""",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO counters (name, value) VALUES ('hits', 0), ('misses', 0)",
)


@dataclass(frozen=True)
class Identity:
    """The file a record vouches for: replaced, truncated or rewritten, it no longer matches."""

    inode: int
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Record:
    identity: Identity
    checksum: str | None
    hash_value: str | None


class CacheRecords:
    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        with closing(sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None)) as db:
            db.execute("PRAGMA journal_mode=WAL")  # outside a transaction, where SQLite allows the change
        with self._connection() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """One transaction; BEGIN IMMEDIATE so writers queue on the busy timeout instead of failing mid-way."""
        with closing(sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def publish(self, image_id: str, identity: Identity, checksum: str | None, hash_value: str | None) -> None:
        now = time.time()
        with self._connection() as db:
            db.execute(
                "INSERT OR REPLACE INTO cached_images (image_id, size, checksum, hash_value, inode, mtime_ns, "
                "last_modified, last_accessed, hits) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                (image_id, identity.size, checksum, hash_value, identity.inode, identity.mtime_ns, now, now),
            )

    def get(self, image_id: str) -> Record | None:
        with self._connection() as db:
            row = db.execute(
                "SELECT inode, size, mtime_ns, checksum, hash_value FROM cached_images WHERE image_id = ?", (image_id,)
            ).fetchone()
        if row is None:
            return None
        return Record(Identity(row[0], row[1], row[2]), row[3], row[4])

    def hit(self, image_id: str) -> None:
        with self._connection() as db:
            db.execute(
                "UPDATE cached_images SET hits = hits + 1, last_accessed = ? WHERE image_id = ?",
                (time.time(), image_id),
            )
            db.execute("UPDATE counters SET value = value + 1 WHERE name = 'hits'")

    def miss(self) -> None:
        with self._connection() as db:
            db.execute("UPDATE counters SET value = value + 1 WHERE name = 'misses'")

    def counters(self) -> dict[str, int]:
        with self._connection() as db:
            return {name: value for name, value in db.execute("SELECT name, value FROM counters")}

    def forget(self, image_id: str) -> bool:
        with self._connection() as db:
            return db.execute("DELETE FROM cached_images WHERE image_id = ?", (image_id,)).rowcount > 0

    def listing(self) -> list[CachedImage]:
        with self._connection() as db:
            rows = db.execute(
                "SELECT image_id, size, hits, last_accessed, last_modified FROM cached_images ORDER BY image_id"
            ).fetchall()
        return [CachedImage(*row) for row in rows]

    def total_size(self) -> int:
        with self._connection() as db:
            return int(db.execute("SELECT COALESCE(SUM(size), 0) FROM cached_images").fetchone()[0])

    def least_recently_used(self) -> list[tuple[str, int]]:
        """(image id, size), least recently read first; never-read copies by the time they were cached."""
        with self._connection() as db:
            rows = db.execute("SELECT image_id, size FROM cached_images ORDER BY last_accessed, last_modified")
            return [(row[0], row[1]) for row in rows]
