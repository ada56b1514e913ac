"""The node-local image cache: Glance's layout under image_cache_dir, safe with several processes on the node.

    <image_cache_dir>/<image id>             verified copies, served
    <image_cache_dir>/incomplete/<image id>  copies being written, each locked (flock) by its writer
    <image_cache_dir>/invalid/<image id>     copies that failed verification, removed by clean()
    <image_cache_dir>/queue/<image id>       images queued for the prefetcher (empty files; mtime = queue time)
    <image_cache_dir>/<image_cache_sqlite_db> records, hits, counters (records.py)

Every image_cache_driver value Glance accepts selects this one driver (see docs in README's "Image cache"):
- one writer per image and node: the writer holds an exclusive flock on its incomplete file, so a second process
  filling the same image sees the lock and streams without caching; a writer killed with -9 loses its lock with
  its process, and the next writer truncates and reuses the file;
- a copy is published only complete and verified (size, md5 and the image's os_hash_value), with an fsync and an
  atomic rename, then recorded with its file identity; publishing and removing take the node lock (`.lock`), so a
  record always names the file it verified;
- a copy is served only while its file still has the recorded identity and the record's checksums are the
  image's: a truncated, rewritten or swapped file is set aside, and the download goes to the store.
Each node has its own cache directory; nothing here is shared between nodes. With Glance's centralized_db driver the
node also records its copies in the shared database (`central`, a ports.CacheNodeRecords), under the node lock as
they are published and removed, so GET /v2/cache/nodes/{id} can say which nodes hold an image. Those records are
best effort: a database away or a crash between the two writes is logged, and clean() brings them back in line.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from glimpse.cache.records import CacheRecords, Identity, Record
from glimpse.domain.entities import CachedImage, CacheExpectation
from glimpse.domain.ports import CacheNodeRecords
from glimpse.filespan import FileSpan

log = logging.getLogger(__name__)

# Image ids are UUIDs: anything else can neither be cached nor name a file beside the cache's own.
_IMAGE_ID = re.compile(r"[0-9a-fA-F-]{1,64}")


def _cacheable_id(image_id: str) -> bool:
    return _IMAGE_ID.fullmatch(image_id) is not None


def _identity(stat: os.stat_result) -> Identity:
    return Identity(stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _unlink(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def _matches(record: Record, expected: CacheExpectation) -> bool:
    if record.identity.size != expected.size:
        return False
    if expected.checksum and record.checksum != expected.checksum:
        return False
    return not (expected.hash_value and record.hash_value != expected.hash_value)


class NodeCache:
    def __init__(
        self,
        directory: Path,
        sqlite_db: str,
        max_size: int,
        stall_time: int,
        central: CacheNodeRecords | None = None,
    ) -> None:
        self.directory = directory
        self.incomplete = directory / "incomplete"
        self.invalid = directory / "invalid"
        self.queue_dir = directory / "queue"
        for folder in (directory, self.incomplete, self.invalid, self.queue_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.max_size = max_size
        self.stall_time = stall_time
        self.records = CacheRecords(directory / sqlite_db)
        self.central = central

    def _tell(self, what: str, call: Callable[[], None]) -> None:
        """A write to the shared records: its failure never fails the cache (clean() repairs them)."""
        if self.central is None:
            return
        try:
            call()
        except Exception as exc:
            log.warning("The image cache's node records in the database were not updated (%s): %s", what, exc)

    def _forget(self, image_id: str) -> bool:
        forgotten = self.records.forget(image_id)
        central = self.central
        if central is not None:
            self._tell(f"image {image_id} removed", lambda: central.remove(image_id))
        return forgotten

    @contextmanager
    def _locked(self, name: str = ".lock") -> Iterator[None]:
        """The node lock: every process of the node opens the same file, flock serialises them (threads too:
        each holder opens the file itself)."""
        with open(self.directory / name, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    # --- reading ------------------------------------------------------------------------------------------
    def read(self, image_id: str, expected: CacheExpectation, start: int, length: int) -> Iterator[bytes] | None:
        if not _cacheable_id(image_id):
            return None
        record = self.records.get(image_id)
        if record is None:
            return None
        try:
            handle = open(self.directory / image_id, "rb")
        except FileNotFoundError:
            with self._locked():
                self._forget(image_id)
            return None
        identity = _identity(os.fstat(handle.fileno()))
        if (identity != record.identity or not _matches(record, expected)) and not self._recheck(
            image_id, handle, expected
        ):
            handle.close()
            return None
        self.records.hit(image_id)
        central = self.central
        if central is not None:
            self._tell(f"image {image_id} read", lambda: central.hit(image_id))
        return FileSpan(handle, start, length)  # a copy removed meanwhile (pruned, cleared) is read whole all the same

    def _recheck(self, image_id: str, handle: BinaryIO, expected: CacheExpectation) -> bool:
        """Under the node lock (a publisher may have been between its rename and its record): True when the open
        file is the verified copy after all; else it leaves service (to invalid/, if it is still the file at the
        path) with its record."""
        with self._locked():
            record = self.records.get(image_id)
            identity = _identity(os.fstat(handle.fileno()))
            if record is not None and record.identity == identity and _matches(record, expected):
                return True
            log.warning("Image %s: the cached copy is not the one verified; set aside, read from the store", image_id)
            self._forget(image_id)
            path = self.directory / image_id
            try:
                if os.stat(path).st_ino == identity.inode:
                    os.replace(path, self.invalid / image_id)
            except FileNotFoundError:
                pass
            return False

    def is_cached(self, image_id: str) -> bool:
        return _cacheable_id(image_id) and self.records.get(image_id) is not None

    def count_miss(self) -> None:
        self.records.miss()

    def counters(self) -> dict[str, int]:
        return self.records.counters()

    # --- writing ------------------------------------------------------------------------------------------
    def writer(self, image_id: str, expected: CacheExpectation) -> CacheFileWriter | None:
        if not _cacheable_id(image_id) or not (expected.checksum or expected.hash_value):
            return None  # only a copy that can be verified is ever published
        if self.records.get(image_id) is not None:
            return None
        path = self.incomplete / image_id
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The previous holder may have published (renamed) the file we opened: ours must be the one at the path.
            if os.stat(path).st_ino != os.fstat(fd).st_ino:
                raise BlockingIOError
            if self.records.get(image_id) is not None:  # published while we waited for the path
                _unlink(path)
                raise BlockingIOError
            os.ftruncate(fd, 0)
        except (BlockingIOError, FileNotFoundError):
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        return CacheFileWriter(self, image_id, fd, expected)

    def _publish(self, writer: CacheFileWriter) -> None:
        image_id = writer.image_id
        # The record vouches for (inode, size, mtime). A write after this one would set the mtime to the clock's
        # current tick, which can be the tick of our last write: stamped a second in the past, the copy's mtime
        # is one no later write makes (short of the clock stepping back).
        stamp = (time.time_ns() // 1_000_000_000 - 1) * 1_000_000_000
        os.utime(writer.fd, ns=(stamp, stamp))
        os.fsync(writer.fd)
        with self._locked():
            os.replace(self.incomplete / image_id, self.directory / image_id)
            identity = _identity(os.fstat(writer.fd))
            self.records.publish(image_id, identity, writer.expected.checksum, writer.expected.hash_value)
            central = self.central
            if central is not None:
                checksum = writer.expected.checksum
                self._tell(f"image {image_id} cached", lambda: central.add(image_id, identity.size, checksum))
        _unlink(self.queue_dir / image_id)
        if self.records.total_size() > self.max_size:
            self.prune()

    # --- management ---------------------------------------------------------------------------------------
    def cached_images(self) -> list[CachedImage]:
        return self.records.listing()

    def queued_images(self) -> list[str]:
        entries = [(p.stat().st_mtime, p.name) for p in self.queue_dir.iterdir() if _cacheable_id(p.name)]
        return [name for _, name in sorted(entries)]

    def queue(self, image_id: str) -> bool:
        """False when the image is cached or queued already (Glance's answer)."""
        if not _cacheable_id(image_id) or self.is_cached(image_id):
            return False
        try:
            os.close(os.open(self.queue_dir / image_id, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            return False
        return True

    def delete_cached(self, image_id: str) -> bool:
        if not _cacheable_id(image_id):
            return False
        with self._locked():
            forgotten = self._forget(image_id)
            removed = _unlink(self.directory / image_id)
        return forgotten or removed

    def delete_queued(self, image_id: str) -> bool:
        return _cacheable_id(image_id) and _unlink(self.queue_dir / image_id)

    def delete_all_cached(self) -> int:
        return sum(self.delete_cached(entry.image_id) for entry in self.cached_images())

    def delete_all_queued(self) -> int:
        return sum(self.delete_queued(image_id) for image_id in self.queued_images())

    def prune(self) -> tuple[int, int]:
        with self._locked(".prune.lock"):  # one pruner at a time on the node
            current = self.records.total_size()
            files = pruned = 0
            for image_id, size in self.records.least_recently_used():
                if current <= self.max_size:
                    break
                if self.delete_cached(image_id):
                    files += 1
                    pruned += size
                current -= size
        if files:
            log.info("Image cache pruned: %d file(s), %d bytes", files, pruned)
        return files, pruned

    def clean(self) -> None:
        for path in self.invalid.iterdir():
            _unlink(path)
        stalled_before = time.time() - self.stall_time
        for path in self.incomplete.iterdir():
            try:
                if path.stat().st_mtime < stalled_before:
                    _unlink(path)  # a writer that wakes up later fails to publish: its file is gone
            except FileNotFoundError:
                continue
        with self._locked():
            recorded = {entry.image_id for entry in self.records.listing()}
            for path in self.directory.iterdir():
                if path.is_file() and _cacheable_id(path.name) and path.name not in recorded:
                    _unlink(path)  # published but never recorded (a crash between the two): unverifiable
            for image_id in recorded:
                if not (self.directory / image_id).exists():
                    self._forget(image_id)
            central = self.central
            if central is not None:  # under the node lock: no copy is published or removed meanwhile
                self._tell("sync", lambda: central.sync(self.records.listing()))


class CacheFileWriter:
    """Writes one image into incomplete/, hashing as it goes; finish() verifies and publishes."""

    def __init__(self, cache: NodeCache, image_id: str, fd: int, expected: CacheExpectation) -> None:
        self.cache = cache
        self.image_id = image_id
        self.fd = fd
        self.expected = expected
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.multihash = hashlib.new(expected.hash_algo) if expected.hash_algo and expected.hash_value else None
        self.done = False

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.expected.size:
            raise OSError(f"Image {self.image_id}: more bytes than its size {self.expected.size}; not cached.")
        self.md5.update(chunk)
        if self.multihash is not None:
            self.multihash.update(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(self.fd, view) :]

    def finish(self) -> bool:
        if self.done:
            return False
        verified = (
            self.size == self.expected.size
            and (not self.expected.checksum or self.md5.hexdigest() == self.expected.checksum)
            and (self.multihash is None or self.multihash.hexdigest() == self.expected.hash_value)
        )
        try:
            if verified:
                self.cache._publish(self)
            else:
                log.warning("Image %s: the data read does not match its size or checksums; not cached", self.image_id)
                os.replace(self.cache.incomplete / self.image_id, self.cache.invalid / self.image_id)
        except FileNotFoundError:
            verified = False  # removed as stalled by clean() meanwhile
        finally:
            self._close()
        return verified

    def abort(self) -> None:
        if self.done:
            return
        try:
            path = self.cache.incomplete / self.image_id
            if os.stat(path).st_ino == os.fstat(self.fd).st_ino:
                _unlink(path)
        except FileNotFoundError:
            pass
        finally:
            self._close()

    def _close(self) -> None:
        self.done = True
        os.close(self.fd)
