"""A tus 1.0 client on httpx for `glimpse image upload`: create uploads, ask their offset, send a file's bytes in
checksummed chunks, and ride out a dropped connection or a restarting server by asking the offset again.

One `Uploader` per connection: parallel parts each get their own (tus concatenation)."""

from __future__ import annotations

import base64
import hashlib
import random
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

import httpx

from glimpse import tus

# Answers worth asking again: the server or a proxy in front of it is restarting or overloaded.
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
NOT_DONE_STATUS = frozenset({429, 502, 503})  # answers that say the request was not carried out
JSON_ERRORS = {"Accept": "application/json"}  # the server's reasons, as JSON rather than an HTML page
PIECE = 256 * 1024
_TAG = re.compile(r"<[^>]*>")  # progress is reported every PIECE bytes of a chunk


class TusError(Exception):
    """The server refused for good (a 4xx that asking again will not change), or failures went on too long
    (resumable: what was sent is kept and `--resume` goes on from there)."""

    def __init__(self, message: str, resumable: bool = False) -> None:
        super().__init__(message)
        self.resumable = resumable


class UploadGone(TusError):
    """The upload is no longer on the server (expired, deleted, or its image is gone)."""


class Stopped(Exception):
    """The user asked to stop (another part failed, or Ctrl-C)."""


@dataclass(frozen=True)
class Backoff:
    """How often and how long to wait before asking again after a transient failure."""

    attempts: int = 10  # consecutive failures without progress before giving up
    first: float = 0.5
    most: float = 20.0

    def delay(self, failures: int) -> float:
        return float(min(self.most, self.first * 2.0 ** (failures - 1)) * random.uniform(0.75, 1.25))


def message_of(response: httpx.Response) -> str:
    """The server's reason, from a Glance error body (JSON or text)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
    else:
        text = str(body.get("message") or body.get("title") or body) if isinstance(body, dict) else str(body)
    if "<h1>" in text:  # an HTML error page: its message follows the heading
        text = text.split("</h1>", 1)[-1]
    text = " ".join(_TAG.sub(" ", text).split())  # Glance's messages end in HTML line breaks
    return f"{response.status_code} {text[:300]}".strip()


class Uploader:
    """One connection to the server; `headers` gives the authentication headers for each request (a Keystone
    token may be renewed between two)."""

    def __init__(
        self,
        client: httpx.Client,
        headers: Callable[[], Mapping[str, str]],
        backoff: Backoff,
        stop: threading.Event | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.headers = headers
        self.backoff = backoff
        self.stop = stop or threading.Event()
        self.on_retry = on_retry or (lambda _message: None)

    def _request(self, method: str, url: str, headers: Mapping[str, str], **kwargs: object) -> httpx.Response:
        return self.client.request(
            method,
            url,
            headers={**self.headers(), **tus.common_headers(), **headers},
            **kwargs,  # type: ignore[arg-type]
        )

    def patiently(self, what: str, call: Callable[[], httpx.Response], repeatable: bool = True) -> httpx.Response:
        """The answer of `call`, asked again with backoff on network errors and transient statuses. A request
        that is not `repeatable` (it makes something) is sent again only when it surely did not arrive."""
        failures = 0
        while True:
            self._check_stop()
            try:
                response = call()
            except httpx.TransportError as exc:
                if not repeatable and not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                    raise TusError(f"{what}: the connection broke before the answer ({exc})", resumable=True) from None
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.status_code not in (TRANSIENT_STATUS if repeatable else NOT_DONE_STATUS):
                    return response
                reason = message_of(response)
            failures += 1
            self._wait_after(failures, what, reason, "trying again")

    def _wait_after(self, failures: int, what: str, reason: str, then: str) -> None:
        """Wait the backoff's delay after the failures-th failure in a row; TusError once there were too many."""
        if failures >= self.backoff.attempts:
            raise TusError(f"{what} failed {failures} times in a row, last: {reason}", resumable=True)
        delay = self.backoff.delay(failures)
        self.on_retry(f"{what}: {reason}; {then} in {delay:.1f} s")
        self._sleep(delay)

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise Stopped

    def create(self, endpoint: str, length: int | None, concat: str | None, metadata: Mapping[str, str]) -> str:
        """POST a new upload: `length` bytes (None for a final concatenation), `concat` 'partial' or
        'final;<urls>'; its absolute URL."""
        headers = {"Upload-Metadata": tus.format_metadata(metadata)} if metadata else {}
        if length is not None:
            headers["Upload-Length"] = str(length)
        if concat is not None:
            headers["Upload-Concat"] = concat
        # A final concatenation joins the parts before it answers: give it time.
        slow = httpx.Timeout(self.client.timeout.connect, read=3600.0)
        timeout = slow if length is None else httpx.USE_CLIENT_DEFAULT
        response = self.patiently(
            "creating the upload", lambda: self._request("POST", endpoint, headers, timeout=timeout), repeatable=False
        )
        if response.status_code != 201 or "location" not in response.headers:
            raise TusError(f"the server did not create the upload: {message_of(response)}")
        return urljoin(endpoint + "/", response.headers["location"])

    def offset(self, url: str, length: int) -> int:
        """The server's offset of the upload at `url`, after checking it is the upload of `length` bytes."""
        response = self.patiently("asking the upload's offset", lambda: self._request("HEAD", url, {}))
        if response.status_code in (404, 410):
            raise UploadGone(f"the upload {url} is no longer on the server")
        if response.status_code != 200:
            raise TusError(f"the server did not say the upload's offset: {message_of(response)}")
        try:
            offset = int(response.headers["upload-offset"])
            server_length = int(response.headers.get("upload-length", length))
        except (KeyError, ValueError):
            raise TusError("the server's answer has no Upload-Offset") from None
        if server_length != length or not 0 <= offset <= length:
            raise UploadGone(f"the upload {url} is of {server_length} bytes, not of the {length} expected")
        return offset

    def send(
        self, url: str, source: BinaryIO, start: int, length: int, chunk_size: int, progress: Callable[[int], None]
    ) -> None:
        """Send bytes [start, start + length) of `source` to the upload at `url`, from the server's offset on.
        progress(offset) is called as bytes go out, and with the server's offset after a failure."""
        offset = self.offset(url, length)
        progress(offset)
        failures = 0
        while offset < length:
            self._check_stop()
            source.seek(start + offset)
            chunk = source.read(min(chunk_size, length - offset))
            if not chunk:
                raise TusError("the file is shorter than when the upload began: it changed")
            try:
                response = self._patch(url, offset, chunk, progress)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.status_code == 204:
                    offset = int(response.headers.get("upload-offset", offset + len(chunk)))
                    progress(offset)
                    failures = 0
                    continue
                if response.status_code in (404, 410):
                    raise UploadGone(f"the upload {url} is no longer on the server")
                # 409: another request moved the offset (or still holds the upload); 460: bytes damaged on the way.
                if response.status_code not in (*TRANSIENT_STATUS, 409, 460):
                    raise TusError(f"the server refused a chunk: {message_of(response)}")
                reason = message_of(response)
            failures += 1
            self._wait_after(failures, "sending the file", reason, "resuming from the server's offset")
            offset = self.offset(url, length)
            progress(offset)

    def _patch(self, url: str, offset: int, chunk: bytes, progress: Callable[[int], None]) -> httpx.Response:
        digest = base64.b64encode(hashlib.sha1(chunk, usedforsecurity=False).digest()).decode()
        headers = {
            "Content-Type": tus.CHUNK_MEDIA_TYPE,
            "Content-Length": str(len(chunk)),
            "Upload-Offset": str(offset),
            "Upload-Checksum": f"sha1 {digest}",
        }

        def pieces() -> Iterator[bytes]:
            view = memoryview(chunk)
            for at in range(0, len(chunk), PIECE):
                self._check_stop()
                yield bytes(view[at : at + PIECE])
                progress(offset + min(at + PIECE, len(chunk)))

        return self._request("PATCH", url, headers, content=pieces())


def belongs_to(url: str, base: str, image_id: str) -> bool:
    """Is `url` an upload of image `image_id` on the server at `base`? (A state file must not steer the data
    elsewhere.)"""
    wanted, got = urlsplit(base), urlsplit(url)
    return (got.scheme, got.netloc) == (wanted.scheme, wanted.netloc) and f"/v2/images/{image_id}/uploads/" in got.path
