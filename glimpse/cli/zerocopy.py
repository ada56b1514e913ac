"""ASGI's zero-copy send extension (`http.response.zerocopysend`) for uvicorn: the kernel's sendfile from the
application's open file to the connection's socket, so no byte of a download crosses Python.

uvicorn offers no such extension, and the loop it runs here is uvloop, whose `loop.sendfile` raises
NotImplementedError even with its fallback allowed (asyncio's selector loop has a native one, which would also
block the loop on a cold file), so this calls os.sendfile itself, the same on either loop:

- on a duplicate of the socket's descriptor, ours to close, so a transport closed meanwhile cannot hand its number
  to another connection while a sendfile still uses it;
- in a small pool of threads, one window of 4 MiB per hop: sendfile blocks on the disk when the file is not in
  the page cache, and that wait must not stall the event loop (a hint, POSIX_FADV_WILLNEED, starts reading the
  next window while the client takes this one); the socket stays non-blocking, so a full socket buffer returns
  at once and a thread waits for a client at most CATCH_UP_MS (a loopback client drains its buffer in about
  that: without it, a hop per MiB cost twice the server's CPU per GiB);
- a client that reads slowly is waited for on the event loop (a writer callback on the duplicate: no thread held,
  no spinning), one that goes away ends the send with ClientGone (how many bytes it got), the transport closed;
- the headers uvicorn buffered are flushed before the first byte of the file, and uvicorn's own body handling
  finishes the response (Content-Length accounting, chunked framing, keep-alive, the next pipelined request).
A TLS connection cannot send from the kernel's page cache: the extension is offered only on plain TCP.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import select
import weakref
from typing import Any, Protocol

from glimpse.streaming import ZEROCOPYSEND, ClientGone

log = logging.getLogger(__name__)
WINDOW = 4 * 1024 * 1024  # one thread hop: a few ms of disk at most
CATCH_UP_MS = 2  # loopback drains a socket buffer in about a millisecond
# Threads wait only on the disk (never on a client), so a few per worker are enough for many downloads.
_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="sendfile")


class Cycle(Protocol):
    """What this module uses of uvicorn's RequestResponseCycle."""

    scope: Any
    transport: asyncio.Transport
    response_started: bool
    response_complete: bool
    disconnected: bool
    chunked_encoding: bool | None
    expected_content_length: int


def offers_zerocopy(transport: asyncio.BaseTransport) -> bool:
    sock = transport.get_extra_info("socket")
    return sock is not None and transport.get_extra_info("sslcontext") is None


def _window(sock: int, fd: int, offset: int, count: int) -> int | None:
    """Send one window (in a thread): bytes sent, None when the socket took none; OSError: the file is shorter.

    A client that drains its socket as fast as loopback does is waited for here a moment (CATCH_UP_MS) rather
    than through the event loop, whose round trip (a writer callback, a thread hop) costs more than the wait;
    a slower one goes back to the loop's wait with what it took."""
    sent = 0
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    while sent < count:
        try:
            done = os.sendfile(sock, fd, offset + sent, count - sent)
        except BlockingIOError:
            done = None
        except (BrokenPipeError, ConnectionResetError):
            if sent:  # what this window sent counts: the next window's first call says the client is gone
                break
            raise
        if done == 0:  # the file ended before the range
            if sent:
                break
            raise OSError(f"The file ended {count} bytes before the range sent.")
        if done is not None:
            sent += done
        if sent < count and not poller.poll(CATCH_UP_MS):
            break
    with contextlib.suppress(OSError):  # a hint: the next window is read from disk while the client takes this one
        os.posix_fadvise(fd, offset + sent, WINDOW, os.POSIX_FADV_WILLNEED)
    return sent or None


class ZeroCopySender:
    """The cycle's `send`, which also carries out zerocopysend messages."""

    def __init__(self, cycle: Cycle, send: Any) -> None:
        """send: the cycle's own bound send. The cycle keeps this sender as its `send`, so neither the cycle nor its
        bound method is held here: a reference back would make every request's objects (its scope, its context)
        cyclic garbage, left to collections that pause the worker for tens of milliseconds."""
        self._cycle = weakref.ref(cycle)
        self._send = send.__func__

    @property
    def cycle(self) -> Cycle:
        cycle = self._cycle()
        if cycle is None:
            raise RuntimeError("The response this send belonged to is over.")
        return cycle

    async def __call__(self, message: Any) -> None:
        cycle = self.cycle
        if message["type"] != ZEROCOPYSEND:
            await self._send(cycle, message)
            return
        if not cycle.response_started or cycle.response_complete:
            raise RuntimeError(f"Unexpected ASGI message '{ZEROCOPYSEND}' outside of a response's body.")
        if cycle.disconnected:
            return  # as uvicorn does for any message once the client has gone
        more_body = message.get("more_body", False)
        if cycle.scope["method"] != "HEAD":
            fd = message["file"].fileno()
            offset = message.get("offset")
            if offset is None:
                offset = os.lseek(fd, 0, os.SEEK_CUR)
            count = message.get("count")
            if count is None:
                count = max(0, os.fstat(fd).st_size - offset)
            if count:
                await self._body(fd, offset, count)
            if message.get("offset") is None:
                os.lseek(fd, offset + count, os.SEEK_SET)  # read from the current position: as a read would
        await self._send(cycle, {"type": "http.response.body", "body": b"", "more_body": more_body})

    async def _body(self, fd: int, offset: int, count: int) -> None:
        cycle = self.cycle
        if cycle.chunked_encoding:
            cycle.transport.write(b"%x\r\n" % count)
        else:
            if count > cycle.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            cycle.expected_content_length -= count
        await Sendfile(cycle.transport).send(fd, offset, count)
        if cycle.chunked_encoding:
            cycle.transport.write(b"\r\n")


class Sendfile:
    """One file range to one transport's socket."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.sent = 0
        self.hops = 0

    async def send(self, fd: int, offset: int, count: int) -> None:
        sock = os.dup(self.transport.get_extra_info("socket").fileno())
        pending: asyncio.Future[int | None] | None = None
        try:
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, offset, count, os.POSIX_FADV_SEQUENTIAL)  # a larger read-ahead
            while self.transport.get_write_buffer_size():  # the headers uvicorn could not write yet go first
                await self._writable(sock)
            while self.sent < count:
                self._check_open()
                pending = self.loop.run_in_executor(
                    _THREADS, _window, sock, fd, offset + self.sent, min(WINDOW, count - self.sent)
                )
                # shielded: a cancelled send (shutdown) lets the thread's call end before the descriptor is closed
                sent = await asyncio.shield(pending)
                pending = None
                self.hops += 1
                if sent is None:
                    await self._writable(sock)
                else:
                    self.sent += sent
        except (BrokenPipeError, ConnectionResetError) as exc:
            self.transport.close()
            raise ClientGone(self.sent) from exc
        except OSError:
            self.transport.close()  # the response cannot be completed: the client must not wait for it
            raise
        finally:
            log.debug("sendfile: %d of %d bytes from offset %d, %d hops", self.sent, count, offset, self.hops)
            if pending is not None and not pending.done():
                pending.add_done_callback(lambda _: os.close(sock))
            else:
                os.close(sock)

    def _check_open(self) -> None:
        if self.transport.is_closing():
            raise ClientGone(self.sent)

    async def _writable(self, sock: int) -> None:
        """Until the socket takes more bytes (or has failed: the next sendfile says how)."""
        self._check_open()
        ready: asyncio.Future[None] = self.loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        self.loop.add_writer(sock, wake)
        try:
            await ready
        finally:
            self.loop.remove_writer(sock)
