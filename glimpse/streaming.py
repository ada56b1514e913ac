"""Image data between the event loop and the blocking store code, shared by the API and the dashboard.

Transfers run in threads of their own (a CapacityLimiter apart from anyio's default one, which
metadata requests use), so any number of slow uploads or downloads cannot leave GET /v2/images
waiting for a thread. Past the limit, a transfer waits for a thread without reading its body.

At shutdown (SIGTERM), transfers still running when graceful_shutdown_timeout ends are stopped (`stop`):
an upload's body reader raises ShuttingDown, so the upload takes its ordinary failure path (image back to
queued, partial data removed, reservation released) and answers 503; a download ends where it is.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread

from glimpse.errors import ShuttingDown

BATCH = 1024 * 1024
DEFAULT_TRANSFER_THREADS = 100
T = TypeVar("T")


class Transfers:
    """The threads image data may hold at once ([DEFAULT] data_transfer_threads)."""

    def __init__(self, threads: int = DEFAULT_TRANSFER_THREADS) -> None:
        self.threads = threads
        self._limiter: anyio.CapacityLimiter | None = None
        self._readers: weakref.WeakSet[RequestBodyReader] = weakref.WeakSet()
        self._stopping = False
        self._busy = 0  # transfer threads running
        self._lock = threading.Lock()

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        if self._limiter is None:  # made on first use, inside the event loop that serves
            self._limiter = anyio.CapacityLimiter(self.threads)
        return self._limiter

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """A blocking upload (store write) in one of the transfer threads."""
        return await anyio.to_thread.run_sync(functools.partial(self._counted, func, *args), limiter=self.limiter)

    def _counted(self, func: Callable[..., T], *args: Any) -> T:
        with self._lock:
            self._busy += 1
        try:
            return func(*args)
        finally:
            with self._lock:
                self._busy -= 1

    def reader(self, stream: AsyncIterator[bytes]) -> RequestBodyReader:
        """An upload's body for the store code, which `stop` can stop."""
        reader = RequestBodyReader(stream)
        self._readers.add(reader)
        if self._stopping:
            reader.abort()
        return reader

    def stop(self) -> int:
        """Stop every upload still reading its body and every download (in the event loop); returns how
        many uploads were stopped. Idempotent."""
        self._stopping = True
        readers = [r for r in list(self._readers) if not (r.finished or r.aborted)]
        for reader in readers:
            reader.abort()
        return len(readers)

    async def drained(self, timeout: float) -> bool:
        """Wait until no transfer thread runs (the stopped uploads have cleaned up), at most `timeout` s."""
        with anyio.move_on_after(timeout):
            while self._busy:
                await anyio.sleep(0.05)
        return not self._busy

    async def iterate(self, chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
        """A blocking download as an async iterator: a thread is held while one chunk is read from the
        store, never while the response waits for a slow client."""
        iterator = iter(chunks)
        try:
            while True:
                if self._stopping:
                    raise ShuttingDown("The server is shutting down: the download stopped before its end.")
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
        self._aborted = False
        self._scope: anyio.CancelScope | None = None

    @property
    def finished(self) -> bool:
        return self._done

    @property
    def aborted(self) -> bool:
        return self._aborted

    def abort(self) -> None:
        """From the event loop: the read in progress, and every later one, raises ShuttingDown."""
        self._aborted = True
        if self._scope is not None:
            self._scope.cancel()

    async def _next_batch(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        with anyio.CancelScope() as scope:
            self._scope = scope
            if self._aborted:
                scope.cancel()
            async for chunk in self._stream:
                if chunk:
                    parts.append(chunk)
                    size += len(chunk)
                if size >= BATCH:
                    break
            else:
                self._done = True
        self._scope = None
        if scope.cancel_called:
            raise ShuttingDown("The server is shutting down: the upload did not finish in time; send it again.")
        return b"".join(parts)

    def __iter__(self) -> Iterator[bytes]:
        while not self._done:
            batch = anyio.from_thread.run(self._next_batch)
            if batch:
                yield batch


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    """The next chunk, or None at the end (a chunk is never None)."""
    return next(chunks, None)
