"""The Create Image form read as it arrives: its text fields, then the image file streamed, never spooled.

Browsers send a form's parts in document order, and the create form puts the file last, so every
field is known when the file begins: the image is created from them and the file's bytes go straight
into the upload (metered against image_size_cap and the quotas like any upload). Everything before
the file (headers and text fields) is bounded in count and bytes; parts after the file are not read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from glimpse.errors import BadRequest, TooLarge

if TYPE_CHECKING:  # python_multipart declares its callbacks' TypedDict for type checkers only
    from python_multipart.multipart import MultipartCallbacks

Event = tuple[str, bytes]


class _Events:
    """python-multipart's callbacks, turned into a queue of (kind, bytes) events read in order."""

    def __init__(self, max_head_bytes: int) -> None:
        self.queue: list[Event] = []
        self._name = b""
        self._value = b""
        self._max_head_bytes = max_head_bytes

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": lambda: self.queue.append(("begin", b"")),
            "on_part_data": lambda data, start, end: self.queue.append(("data", bytes(data[start:end]))),
            "on_part_end": lambda: self.queue.append(("end", b"")),
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self.queue.append(("headers", b"")),
        }

    def _grow(self, attr: str, data: bytes, start: int, end: int) -> None:
        setattr(self, attr, getattr(self, attr) + data[start:end])
        if len(self._name) + len(self._value) > self._max_head_bytes:
            raise TooLarge(f"A form part's header is longer than {self._max_head_bytes} bytes.")

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._grow("_name", data, start, end)

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._grow("_value", data, start, end)

    def _header_end(self) -> None:
        if self._name.lower() == b"content-disposition":
            self.queue.append(("disposition", self._value))
        self._name = self._value = b""


class StreamedForm:
    def __init__(self, request: Request, max_field_bytes: int, max_fields: int) -> None:
        _, options = parse_options_header(request.headers.get("content-type", ""))
        boundary = options.get(b"boundary")
        if not boundary:
            raise BadRequest("The form post has no multipart boundary.")
        self._events = _Events(max_head_bytes=16384)
        self._parser = MultipartParser(boundary, self._events.callbacks())
        self._stream: AsyncIterator[bytes] = request.stream().__aiter__()
        self._ended = False
        self._max_field_bytes = max_field_bytes
        self._max_fields = max_fields
        self.fields: dict[str, str] = {}
        self.filename: str | None = None  # set when a file part with a name follows the fields

    async def _next(self) -> Event | None:
        queue = self._events.queue
        while not queue:
            if self._ended:
                return None
            try:
                chunk = await self._stream.__anext__()
            except StopAsyncIteration:
                self._ended = True
                continue
            try:
                self._parser.write(chunk)
            except FormParserError as exc:
                raise BadRequest(f"Malformed form post: {exc}.") from None
        return queue.pop(0)

    async def read_fields(self) -> dict[str, str]:
        """The text fields up to the file (or the end); afterwards `filename` tells whether a file follows."""
        name, filename, value, used = "", None, bytearray(), 0
        while (event := await self._next()) is not None:
            kind, data = event
            if kind == "begin":
                name, filename, value = "", None, bytearray()
            elif kind == "disposition":
                _, options = parse_options_header(data)
                name = options.get(b"name", b"").decode("utf-8", "replace")
                raw = options.get(b"filename")
                filename = raw.decode("utf-8", "replace") if raw is not None else None
            elif kind == "headers" and filename:  # a chosen file (no file chosen: filename="")
                self.filename = filename
                return self.fields
            elif kind == "data":
                used += len(data)
                if used > self._max_field_bytes:
                    raise TooLarge(f"The form's fields are larger than {self._max_field_bytes} bytes.")
                value += data
            elif kind == "end" and filename is None:
                if len(self.fields) >= self._max_fields:
                    raise BadRequest(f"The form has more than {self._max_fields} fields.")
                self.fields[name] = value.decode("utf-8", "replace")
        return self.fields

    async def file_chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive; read_fields must have found the file first."""
        while (event := await self._next()) is not None and event[0] != "end":
            if event[0] == "data" and event[1]:
                yield event[1]
