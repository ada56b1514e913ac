"""A span of an open local file: image data the file store and the node cache hand out.

It iterates like any store's data (so a wrapper that meters, tees into the cache or counts for a notification works
on it unchanged), and says what it is: the HTTP layer, when nothing wraps it, reads it in large blocks off the
event loop, or hands the whole file to a server that sends files itself (the ASGI pathsend extension).
The span reads through its open descriptor, so a file renamed or removed meanwhile (a cache copy pruned, a store
file replaced) is still read whole. A server that sends a file opens it again by name, after the application has
handed it over, so only files that keep their name while they are served say it (`path`): the file store's
(an image's data file changes only when the image is deleted), not the cache's (a copy may be pruned at any time).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import BinaryIO

CHUNK = 1024 * 1024


class FileSpan:
    def __init__(
        self, handle: BinaryIO, offset: int, length: int | None = None, *, path: str | None = None, chunk: int = CHUNK
    ) -> None:
        """The span ends at the file's end as it is now (`length` None: there). `path`: the file's absolute name,
        when a server may send it by that name."""
        self._handle = handle
        self.path = path
        self._fd = handle.fileno()
        self.size = os.fstat(self._fd).st_size
        self.offset = offset
        rest = max(0, self.size - offset)
        self.length = rest if length is None else min(length, rest)
        self.chunk = chunk
        self._position = offset
        self._left = self.length
        self._delivered: int | None = None
        self._on_close: list[Callable[[int], None]] = []

    @property
    def whole_file(self) -> bool:
        """The span is the file from its first byte to its last (what a server's file sending sends)."""
        return self.offset == 0 and self.length == self.size

    @property
    def untouched(self) -> bool:
        """Open, and no byte read yet."""
        return not self._handle.closed and self._left == self.length

    def fileno(self) -> int:
        """The open file's descriptor, for a server that sends the span itself (ASGI's zerocopysend)."""
        return self._fd

    def __iter__(self) -> FileSpan:
        return self

    def __next__(self) -> bytes:
        block = self.read(self.chunk)
        if not block:
            raise StopIteration
        return block

    def read(self, size: int) -> bytes:
        """The next bytes of the span, at most `size`; b"" at its end (the file is then closed)."""
        if self._left <= 0 or self._handle.closed:
            self.close()
            return b""
        block = os.pread(self._fd, min(size, self._left), self._position)
        if not block:
            self.close()
            raise OSError(f"{self._handle.name} was cut short while it was read ({self._left} bytes missing).")
        self._position += len(block)
        self._left -= len(block)
        return block

    def when_closed(self, callback: Callable[[int], None]) -> None:
        """`callback(bytes sent)` once the span is closed (it may block: close the span off the event loop)."""
        self._on_close.append(callback)

    def delivered(self, sent: int) -> None:
        """The server sent the span itself: `sent` bytes of it left (else what was read counts as sent)."""
        self._delivered = sent

    def close(self) -> None:
        self._handle.close()
        callbacks, self._on_close = self._on_close, []
        sent = self.length - self._left if self._delivered is None else self._delivered
        for callback in callbacks:
            callback(sent)
