"""A request body as a blocking iterator, shared by the REST API and the dashboard uploads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio.from_thread

BATCH = 1024 * 1024


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
