"""The store-driver interface every backend implements, and the hashing writer they share."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from glimpse.domain.entities import StoredData
from glimpse.domain.ports import Store
from glimpse.errors import BadRequest, TooLarge

__all__ = ["HashingMeter", "Heartbeat", "Store", "StoredData", "check_deletable"]


def check_deletable(store: Store, url: str) -> None:
    """Raise InUse when the data at `url` cannot be removed now (stores that know such a thing say so)."""
    check = getattr(store, "check_deletable", None)
    if check is not None:
        check(url)


class Heartbeat:
    """Passes chunks through, calling `beat` at most every `every` seconds while data flows."""

    def __init__(self, chunks: Iterable[bytes], beat: Callable[[], None], every: float = 10.0) -> None:
        self._chunks = chunks
        self._beat = beat
        self._every = every

    def __iter__(self) -> Iterator[bytes]:
        due = time.monotonic() + self._every
        for chunk in self._chunks:
            if time.monotonic() >= due:
                self._beat()
                due = time.monotonic() + self._every
            yield chunk


# hashlib releases the GIL on large buffers: md5 and the multihash run side by side on two cores. (The file
# store's write of the chunk beside them too was measured slower on two cores: three threads and the event loop.)
_HASHERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="glimpse-hash")
PARALLEL_FROM = 256 * 1024


def beside(func: Callable[[bytes], object], chunk: bytes) -> Future[object] | None:
    """`func(chunk)` started in another thread when the chunk is large enough to be worth it (None: not started,
    the caller runs it)."""
    return _HASHERS.submit(func, chunk) if len(chunk) >= PARALLEL_FROM else None


class HashingMeter:
    """Hashes and counts bytes as they pass, refusing more than max_size."""

    def __init__(self, max_size: int, hash_algo: str) -> None:
        self.max_size = max_size
        self.size = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.hash_algo = hash_algo
        self.multihash = hashlib.new(hash_algo)

    def update(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_size:
            raise TooLarge(f"Image exceeds the storage quota or size limit of {self.max_size} bytes.")
        other = beside(self.multihash.update, chunk)
        if other is not None:
            self.md5.update(chunk)
            other.result()
        else:
            self.md5.update(chunk)
            self.multihash.update(chunk)

    def check_expected(self, expected_size: int | None) -> None:
        if expected_size is not None and expected_size != self.size:
            raise BadRequest(f"Image size {self.size} does not match the expected size {expected_size}.")

    def result(self, url: str, metadata: dict[str, str] | None = None) -> StoredData:
        return StoredData(
            url=url,
            size=self.size,
            checksum=self.md5.hexdigest(),
            hash_algo=self.hash_algo,
            hash_value=self.multihash.hexdigest(),
            metadata=metadata or {},
        )
