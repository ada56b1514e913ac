"""The store-driver interface every backend implements, and the hashing writer they share."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

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


# hashlib releases the GIL on large buffers: md5 and the multihash run side by side on two cores.
_HASHERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="glimpse-hash")
PARALLEL_FROM = 256 * 1024


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
        if len(chunk) >= PARALLEL_FROM:
            other = _HASHERS.submit(self.multihash.update, chunk)
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
