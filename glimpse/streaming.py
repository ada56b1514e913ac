"""Image data between the event loop and the blocking store code, shared by the API and the dashboard.

Transfers run in threads of their own (a CapacityLimiter apart from anyio's default one, which
metadata requests use), so any number of slow uploads or downloads cannot leave GET /v2/images
waiting for a thread. Past the limit, a transfer waits for a thread without reading its body.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread

BATCH = 1024 * 1024
DEFAULT_TRANSFER_THREADS = 100
T = TypeVar("T")


class Transfers:
    """The threads image data may hold at once ([DEFAULT] data_transfer_threads)."""

    def __init__(self, threads: int = DEFAULT_TRANSFER_THREADS) -> None:
        self.threads = threads
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # made on first use, inside the event loop that serves
            self._limiter = anyio.CapacityLimiter(self.threads)
        return self._limiter

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """A blocking upload (store write) in one of the transfer threads."""
        return await anyio.to_thread.run_sync(functools.partial(func, *args), limiter=self.limiter)

    async def iterate(self, chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
        """A blocking download as an async iterator: a thread is held while one chunk is read from the
        store, never while the response waits for a slow client."""
        iterator = iter(chunks)
        try:
            while True:
                chunk = await anyio.to_thread.run_sync(_next_chunk, iterator, limiter=self.limiter)
                if chunk is None:
                    return
                yield chunk
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(close, limiter=self.limiter)


class RequestBodyReader:
    """The request body as a blocking iterator, for the store code running in a worker thread.

    Each step hops to the event loop once and brings back about a megabyte, so the thread
    switches stay rare while memory stays bounded.
    """

    def __init__(self, stream: AsyncIterator[bytes]) -> None:
        self._stream = stream
        self._done = False

    async def _next_batch(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self._stream:
            if chunk:
                parts.append(chunk)
                size += len(chunk)
            if size >= BATCH:
                break
        else:
            self._done = True
        return b"".join(parts)

    def __iter__(self) -> Iterator[bytes]:
        while not self._done:
            batch = anyio.from_thread.run(self._next_batch)
            if batch:
                yield batch


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    """The next chunk, or None at the end (a chunk is never None)."""
    return next(chunks, None)
