"""The http store: read-only, serves image data registered by an http(s) URL, streamed with Range.

Glance's http driver has the same role: the data lives on a web server Glimpse does not manage, so
it is never written nor deleted here. Reads ask the server for the byte range wanted; a server that
ignores Range (200 instead of 206) is read from the start and the unwanted bytes are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import httpx

from glimpse.errors import NotFound, StoreError, StoreUnavailable
from glimpse.store.base import StoredData

READ_CHUNK = 1024 * 1024
MAX_REDIRECTS = 5


class HttpStore:
    type = "http"
    schemes = ("http", "https")
    read_only = True

    def __init__(
        self,
        name: str,
        *,
        insecure: bool = False,
        ca_file: str | None = None,
        proxies: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.name = name
        verify: bool | str = ca_file or not insecure
        mounts = {
            f"{scheme}://": httpx.HTTPTransport(proxy=url, verify=verify) for scheme, url in (proxies or {}).items()
        }
        self._client = httpx.Client(
            verify=verify,
            timeout=httpx.Timeout(timeout),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            mounts=mounts or None,
        )

    def add(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        raise StoreError(f"Store {self.name} is read-only: the http store cannot receive image data.")

    def get(self, url: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        if length == 0:
            return iter(())
        headers = {"Accept-Encoding": "identity"}  # bytes as stored, so ranges and sizes mean the same
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        request = self._client.build_request("GET", url, headers=headers)
        try:
            response = self._client.send(request, stream=True)
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"Image data at {url} could not be reached: {exc}.") from exc
        try:
            _check(response, url)
        except BaseException:
            response.close()
            raise
        skip = offset if response.status_code == 200 else 0
        return _stream(response, skip, length)

    def size(self, url: str) -> int:
        try:
            response = self._client.head(url, headers={"Accept-Encoding": "identity"})
        except httpx.TransportError as exc:
            raise StoreUnavailable(f"Image data at {url} could not be reached: {exc}.") from exc
        _check(response, url)
        value = response.headers.get("content-length")
        if value is None or not value.isdigit():
            raise StoreError(f"The server of {url} does not tell the size of the data.")
        return int(value)

    def delete(self, url: str) -> None:
        """The data belongs to the web server; forgetting the location is all there is to do."""

    def properties(self) -> dict[str, object]:
        return {}

    def recover(self, node: str) -> int:
        return 0

    def discard_partial(self, image_id: str, node: str) -> None:
        """Read-only: nothing is ever written here."""

    def url_for(self, image_id: str) -> str:
        raise StoreError("The http store is read-only: it names no locations of its own.")


def _check(response: httpx.Response, url: str) -> None:
    if response.status_code in (404, 410):
        raise NotFound(f"Image data at {url} is missing (HTTP {response.status_code}).")
    if response.status_code >= 500:
        raise StoreUnavailable(f"The server of {url} failed (HTTP {response.status_code}).")
    if response.status_code not in (200, 206):
        raise StoreError(f"The server of {url} answered HTTP {response.status_code}.")


def _stream(response: httpx.Response, skip: int, length: int | None) -> Iterator[bytes]:
    remaining = length
    try:
        for chunk in response.iter_raw(READ_CHUNK):
            if skip:
                dropped = min(skip, len(chunk))
                chunk, skip = chunk[dropped:], skip - dropped
            if remaining is not None:
                chunk = chunk[:remaining]
                remaining -= len(chunk)
            if chunk:
                yield chunk
            if remaining == 0:
                return
    except httpx.TransportError as exc:
        raise StoreUnavailable(f"Reading image data from {response.url} failed: {exc}.") from exc
    finally:
        response.close()
