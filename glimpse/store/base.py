"""The store-driver interface every backend implements, and the hashing writer they share."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from glimpse.errors import BadRequest, TooLarge


@dataclass(frozen=True)
class StoredData:
    """What a store reports once data is written in full."""

    url: str
    size: int
    checksum: str
    hash_algo: str
    hash_value: str
    metadata: dict[str, str] = field(default_factory=dict)


class Store(Protocol):
    name: str
    type: str
    # Location URL schemes this driver reads, e.g. ("s3", "s3+http", "s3+https").
    schemes: tuple[str, ...]
    # A read-only store (http) serves data registered by URL; add raises StoreError.
    read_only: bool

    def add(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        """Write data under a temporary name, hashing it; publish it under its final name only when complete.

        Raises TooLarge past max_size, BadRequest when expected_size is given and not met, StoreFull,
        StoreError; the temporary data is gone whenever it raises.
        """
        ...

    def url_for(self, image_id: str) -> str:
        """The location the store gives an image's data."""
        ...

    def get(self, url: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream `length` bytes (all remaining when None) from `offset`.

        Raises NotFound (or StoreError, StoreUnavailable) before returning, so a caller can fall back to
        another location; the iterator releases its connection or file when exhausted or closed.
        """
        ...

    def size(self, url: str) -> int:
        """Bytes stored at url. Raises NotFound."""
        ...

    def delete(self, url: str) -> None:
        """Remove the data; data already gone is not an error."""
        ...

    def properties(self) -> dict[str, object]:
        """What /v2/info/stores/detail shows about the store (no secrets)."""
        ...

    def recover(self, node: str) -> int:
        """Remove partial data a crashed writer `node` left behind; returns how many were removed."""
        ...

    def discard_partial(self, image_id: str, node: str) -> None:
        """Remove the partial data of one image that the dead writer `node` left behind."""
        ...


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
