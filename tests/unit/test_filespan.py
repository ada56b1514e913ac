"""A span of an open file: what the file store and the node cache hand out, and how downloads read it."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import pytest

from glimpse.errors import ShuttingDown
from glimpse.filespan import FileSpan
from glimpse.streaming import FILE_BLOCK, ZEROCOPYSEND, RequestBodyReader, Transfers


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = os.urandom(2 * FILE_BLOCK + 1234)
    path = tmp_path / "image"
    path.write_bytes(data)
    return path, data


@pytest.mark.parametrize(("offset", "length"), [(0, None), (7, 100), (5, 10**9), (10**9, None), (0, 0)])
def test_a_span_reads_its_bytes_and_stops_at_the_file_end(
    data_file: tuple[Path, bytes], offset: int, length: int | None
) -> None:
    path, data = data_file
    span = FileSpan(open(path, "rb"), offset, length, chunk=4096)
    expected = data[offset:] if length is None else data[offset : offset + length]
    assert span.length == len(expected)
    assert b"".join(span) == expected
    assert span.read(10) == b""  # and stays at its end, the file closed


def test_whole_file_and_the_name_a_server_may_open(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    whole = FileSpan(open(path, "rb"), 0, len(data), path=str(path))
    assert whole.whole_file and whole.untouched and whole.path == str(path)
    whole.read(1)
    assert not whole.untouched
    whole.close()
    part = FileSpan(open(path, "rb"), 1, None)
    assert not part.whole_file and part.path is None
    part.close()


def test_a_file_removed_meanwhile_is_read_whole(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    span = FileSpan(open(path, "rb"), 0)
    path.unlink()
    assert b"".join(span) == data


def test_a_file_cut_short_while_read_is_an_error(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    span = FileSpan(open(path, "rb"), 0, chunk=FILE_BLOCK)
    span.read(FILE_BLOCK)
    os.truncate(path, FILE_BLOCK + 10)
    assert len(span.read(FILE_BLOCK)) == 10
    with pytest.raises(OSError, match="cut short"):
        span.read(FILE_BLOCK)


def test_a_download_reads_a_span_in_blocks_and_closes_it(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    span = FileSpan(open(path, "rb"), 0)

    async def main() -> list[bytes]:
        return [chunk async for chunk in Transfers().iterate(span)]

    blocks = anyio.run(main)
    assert b"".join(blocks) == data and [len(b) for b in blocks[:2]] == [FILE_BLOCK, FILE_BLOCK]
    assert span.read(1) == b""


def test_a_download_stopped_early_closes_its_source_after_the_read_ahead() -> None:
    closed: list[bool] = []

    def chunks() -> Iterator[bytes]:
        try:
            for i in range(100):
                yield bytes([i]) * 10
        finally:
            closed.append(True)

    async def main() -> bytes:
        stream = Transfers().iterate(chunks())
        first = await stream.__anext__()
        await stream.aclose()  # the client went away
        return first

    assert anyio.run(main) == b"\x00" * 10
    assert closed == [True]


def test_an_upload_body_comes_in_batches_read_ahead() -> None:
    pieces = [os.urandom(300_000) for _ in range(9)]

    async def body() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    async def main() -> list[bytes]:
        reader = RequestBodyReader(body())
        return await anyio.to_thread.run_sync(lambda: list(reader))

    batches = anyio.run(main)
    assert b"".join(batches) == b"".join(pieces) and len(batches) < len(pieces)


def test_an_upload_stopped_at_shutdown_raises_in_the_reading_thread() -> None:
    async def endless() -> AsyncIterator[bytes]:
        while True:
            await anyio.sleep(0.01)
            yield b"x" * 1000

    async def main() -> None:
        reader = RequestBodyReader(endless())

        def consume() -> None:
            for _ in reader:
                pass

        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, consume)
            await anyio.sleep(0.2)
            reader.abort()

    with pytest.raises(ExceptionGroup) as caught:
        anyio.run(main)
    assert caught.group_contains(ShuttingDown)


def test_a_download_cancelled_during_a_read_closes_its_source_once_the_read_ends() -> None:
    events: list[str] = []

    def chunks() -> Iterator[bytes]:
        try:
            yield b"first"
            time.sleep(0.3)  # a slow store read, in its thread, when the response is cancelled
            events.append("read ended")
            yield b"second"
        finally:
            events.append("closed")

    async def main() -> None:
        stream = Transfers().iterate(chunks())

        async def consume() -> None:
            async for _ in stream:
                pass

        with anyio.move_on_after(0.1):  # the client went away while the second chunk was being read
            await consume()
        await stream.aclose()

    anyio.run(main)
    assert events == ["read ended", "closed"]


def test_closing_a_span_reports_what_left_once(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    reported: list[int] = []
    read = FileSpan(open(path, "rb"), 0)
    read.when_closed(reported.append)
    read.read(10)
    read.close()
    read.close()
    sent = FileSpan(open(path, "rb"), 3, 100)
    sent.when_closed(reported.append)
    sent.delivered(77)  # the server sent it itself: what it says left, not what was read
    sent.close()
    assert reported == [10, 77]


def test_a_file_the_server_sends_stops_at_shutdown() -> None:
    async def main() -> list[bool]:
        transfers, ended = Transfers(), []

        async def slow_send(message: object) -> None:
            await anyio.sleep(30)

        async def download() -> None:
            ended.append(await transfers.send_file(slow_send, {"type": ZEROCOPYSEND}))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(download)
                tg.start_soon(download)
                await anyio.sleep(0.1)
                transfers.stop()
        ended.append(await transfers.send_file(slow_send, {"type": ZEROCOPYSEND}))  # after stop: at once
        return ended

    assert anyio.run(main) == [False, False, False]
