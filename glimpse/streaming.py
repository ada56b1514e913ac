"""Image data between the event loop and the blocking store code, shared by the API and the dashboard.

Transfers run in threads of their own (a CapacityLimiter apart from anyio's default one, which
metadata requests use), so any number of slow uploads or downloads cannot leave GET /v2/images
waiting for a thread. Past the limit, a transfer waits for a thread without reading its body.

Both directions overlap the two halves of a transfer: a download reads its next block in a thread while the
event loop sends the current one, and an upload receives its next batch on the event loop while the thread hashes
and writes the current one. Data in a local file (a FileSpan: the file store, the node cache) is read in large
blocks straight from its descriptor, or, when nothing needs to see the bytes, handed to the server: as an open file
and a range (ASGI's zerocopysend extension, which `glimpse serve` offers: the kernel's sendfile), or, for a whole
file, by its name (the pathsend extension, e.g. Granian).

At shutdown (SIGTERM), transfers still running when graceful_shutdown_timeout ends are stopped (`stop`):
an upload's body reader raises ShuttingDown, so the upload takes its ordinary failure path (image back to
queued, partial data removed, reservation released) and answers 503; a download ends where it is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from glimpse.errors import ShuttingDown
from glimpse.filespan import FileSpan

BATCH = 1024 * 1024
# A download's reads from a local file: large enough that the thread hop and the ASGI messages are rare, small
# enough that two of them (one sent, one read ahead) per download stay a small part of a worker's memory.
FILE_BLOCK = 2 * 1024 * 1024
PATHSEND = "http.response.pathsend"
ZEROCOPYSEND = "http.response.zerocopysend"
DEFAULT_TRANSFER_THREADS = 100
T = TypeVar("T")


class ClientGone(ConnectionError):
    """The client went away while the server sent a file itself: `sent` bytes of it reached the socket."""

    def __init__(self, sent: int) -> None:
        super().__init__(f"The client went away after {sent} bytes of the file.")
        self.sent = sent


class Transfers:
    """The threads image data may hold at once ([DEFAULT] data_transfer_threads)."""

    def __init__(self, threads: int = DEFAULT_TRANSFER_THREADS) -> None:
        self.threads = threads
        self._limiter: anyio.CapacityLimiter | None = None
        self._readers: weakref.WeakSet[RequestBodyReader] = weakref.WeakSet()
        self._sending: set[anyio.CancelScope] = set()  # downloads the server sends from their files
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
        for scope in self._sending:
            scope.cancel()
        return len(readers)

    async def send_file(self, send: Send, message: Message) -> bool:
        """A zerocopysend message, which `stop` ends where it is (then False)."""
        with anyio.CancelScope() as scope:
            self._sending.add(scope)
            try:
                if self._stopping:
                    scope.cancel()
                await send(message)
            finally:
                self._sending.discard(scope)
        return not scope.cancelled_caught

    async def drained(self, timeout: float) -> bool:
        """Wait until no transfer thread runs (the stopped uploads have cleaned up), at most `timeout` s."""
        with anyio.move_on_after(timeout):
            while self._busy:
                await anyio.sleep(0.05)
        return not self._busy

    async def iterate(self, chunks: Iterable[bytes]) -> AsyncIterator[bytes]:
        """A blocking download as an async iterator: a thread is held while one chunk is read from the
        store, never while the response waits for a slow client. The next chunk is read while this one goes out."""
        if isinstance(chunks, FileSpan):
            read: Callable[[], bytes | None] = functools.partial(_next_block, chunks)
            closing: Iterable[bytes] = chunks
        else:
            iterator = iter(chunks)
            read, closing = functools.partial(_next_chunk, iterator), iterator
        ahead: asyncio.Future[bytes | None] | None = None
        try:
            while True:
                if self._stopping:
                    raise ShuttingDown("The server is shutting down: the download stopped before its end.")
                ahead = ahead or asyncio.ensure_future(self._in_thread(read))
                # shielded: a cancelled response (the client went away) leaves the read running in its thread,
                # which must end before its source is closed (a generator cannot be closed while it runs)
                chunk = await asyncio.shield(ahead)
                ahead = None
                if chunk is None:
                    return
                ahead = asyncio.ensure_future(self._in_thread(read))
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                if ahead is not None:
                    await asyncio.wait({ahead})
                    if not ahead.cancelled():
                        ahead.exception()  # retrieved: the download is over either way
                close = getattr(closing, "close", None)
                if close is not None:
                    await self._in_thread(close)

    async def close(self, span: FileSpan) -> None:
        """Close a span in a transfer thread: what waits on its closing (a notification) may block."""
        with anyio.CancelScope(shield=True):
            await self._in_thread(span.close)

    def _in_thread(self, func: Callable[[], T]) -> Awaitable[T]:
        return anyio.to_thread.run_sync(func, limiter=self.limiter)

    def response(self, chunks: Iterable[bytes], status_code: int, headers: Mapping[str, str]) -> DataResponse:
        return DataResponse(self, chunks, status_code, headers)


class DataResponse(StreamingResponse):
    """Image data as a response. A local file that nothing wraps (nothing must see its bytes: no cache being
    filled, no count for a notification) and nothing has read yet goes to a server that sends files itself, so no
    byte crosses Python: any range of it by zerocopysend (uvicorn as `glimpse serve` runs it), a whole file by
    pathsend (Granian). Anything else streams through `iterate`."""

    def __init__(
        self, transfers: Transfers, chunks: Iterable[bytes], status_code: int, headers: Mapping[str, str]
    ) -> None:
        self._transfers = transfers
        self._span = chunks if isinstance(chunks, FileSpan) else None
        super().__init__(transfers.iterate(chunks), status_code, dict(headers), media_type="application/octet-stream")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        span = self._span
        extensions = scope.get("extensions", {})
        if span is None or not span.untouched:
            await super().__call__(scope, receive, send)
        elif ZEROCOPYSEND in extensions:
            await self._zerocopy(span, send)
        elif PATHSEND in extensions and span.path is not None and span.whole_file:
            span.delivered(span.length)  # as far as the app can know
            await self._transfers.close(span)  # the server opens the file by its name
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            await send({"type": PATHSEND, "path": span.path})
        else:
            await super().__call__(scope, receive, send)

    async def _zerocopy(self, span: FileSpan, send: Send) -> None:
        sent = 0
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            message = {"type": ZEROCOPYSEND, "file": span, "offset": span.offset, "count": span.length}
            if await self._transfers.send_file(send, message):
                sent = span.length
        except ClientGone as exc:  # the access log says so; nothing is left to answer
            sent = exc.sent
        except OSError:  # the client went away before the file (the headers could not be written)
            return
        finally:
            span.delivered(sent)
            await self._transfers.close(span)


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
        self._loop = asyncio.get_running_loop()  # made in the event loop; iterated in a worker thread

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
        ahead: concurrent.futures.Future[bytes] | None = self._fetch()
        try:
            while ahead is not None:
                batch = ahead.result()
                # the next batch arrives while the caller hashes and writes this one
                ahead = None if self._done else self._fetch()
                if batch:
                    yield batch
        finally:
            if ahead is not None:  # the caller stopped early (a failure): nobody wants the rest of the body
                ahead.cancel()

    def _fetch(self) -> concurrent.futures.Future[bytes]:
        return asyncio.run_coroutine_threadsafe(self._next_batch(), self._loop)


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    """The next chunk, or None at the end (a chunk is never None)."""
    return next(chunks, None)


def _next_block(span: FileSpan) -> bytes | None:
    return span.read(FILE_BLOCK) or None
