"""The create form's multipart body read in order: fields, then the file, with bounds on what precedes it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from starlette.requests import Request

from glimpse.dashboard.multipart import StreamedForm
from glimpse.errors import BadRequest, TooLarge

B = b"xyz"


def _request(chunks: list[bytes]) -> Request:
    parts: Iterator[bytes] = iter(chunks)

    async def receive() -> dict[str, object]:
        body = next(parts, b"")
        return {"type": "http.request", "body": body, "more_body": body != b""}

    headers = [(b"content-type", b"multipart/form-data; boundary=" + B)]
    return Request({"type": "http", "method": "POST", "headers": headers, "path": "/"}, receive)


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    extra = f'; filename="{filename}"' if filename is not None else ""
    return b"--" + B + f'\r\nContent-Disposition: form-data; name="{name}"{extra}\r\n\r\n'.encode() + value + b"\r\n"


END = b"--" + B + b"--\r\n"


def _read(chunks: list[bytes], max_bytes: int = 1000, max_fields: int = 10) -> tuple[dict[str, str], str | None, bytes]:
    async def run() -> tuple[dict[str, str], str | None, bytes]:
        form = StreamedForm(_request(chunks), max_bytes, max_fields)
        fields = await form.read_fields()
        data = b"".join([c async for c in form.file_chunks()]) if form.filename else b""
        return fields, form.filename, data

    return asyncio.run(run())


def test_fields_then_the_file_in_pieces() -> None:
    body = _part("name", "n ü".encode()) + _part("file", b"0123456789" * 100, "f.img") + END
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    assert _read(pieces) == ({"name": "n ü"}, "f.img", b"0123456789" * 100)


def test_no_file_chosen_is_no_file() -> None:
    assert _read([_part("file", b"", "") + _part("name", b"n") + END]) == ({"name": "n"}, None, b"")


def test_fields_after_the_file_are_not_read() -> None:
    fields, filename, data = _read([_part("a", b"1") + _part("file", b"D", "f") + _part("late", b"x") + END])
    assert (fields, filename, data) == ({"a": "1"}, "f", b"D")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (_part("a", b"x" * 2000) + END, TooLarge),
        (b"".join(_part(f"f{i}", b"") for i in range(11)) + END, BadRequest),
        (b"--" + B + b"\r\nContent-Disposition: " + b"x" * 20000 + b"\r\n\r\n", (BadRequest, TooLarge)),
        (b"--" + B + b"\r\nno colon here\r\n\r\n", BadRequest),
    ],
)
def test_what_precedes_the_file_is_bounded(body: bytes, error: type[Exception] | tuple[type[Exception], ...]) -> None:
    with pytest.raises(error):
        _read([body])


def test_a_post_without_boundary() -> None:
    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b""}

    request = Request(
        {"type": "http", "method": "POST", "headers": [(b"content-type", b"multipart/form-data")]}, receive
    )
    with pytest.raises(BadRequest):
        StreamedForm(request, 10, 10)
