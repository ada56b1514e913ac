"""The http store: read-only, serves image data registered by an http(s) URL, streamed with Range.

Glance's http driver has the same role: the data lives on a web server Glimpse does not manage, so
it is never written nor deleted here. Reads ask the server for the byte range wanted; a server that
ignores Range (200 instead of 206) is read from the start and the unwanted bytes are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from glimpse.errors import BadRequest, NotFound, StoreError, StoreUnavailable
from glimpse.sources import fetch
from glimpse.sources.egress import EgressPolicy
from glimpse.store.base import StoredData


class HttpStore:
    """Every read and size probe goes through the egress policy (sources/egress.py): the connection is
    pinned to a checked address, redirects are judged again, and slow servers are cut off. An internal
    web server is reached only when the operator says so ([egress] http_store_allowed_hosts, or
    [import_filtering_opts] allowed_hosts / allow_private_addresses)."""

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
        egress: EgressPolicy | None = None,
    ) -> None:
        self.name = name
        self.egress = egress or EgressPolicy()
        self._verify: bool | str = ca_file or not insecure
        self._proxies = dict(proxies or {})

    def _open(self, url: str, method: str, headers: dict[str, str]) -> fetch.Transfer:
        scheme = url.partition(":")[0].lower()
        try:
            return fetch.open_url(
                self.egress, url, method=method, headers=headers, verify=self._verify, proxy=self._proxies.get(scheme)
            )
        except fetch.Unreachable as exc:
            raise StoreUnavailable(f"Image data at {url} could not be reached: {exc.message}") from None
        except BadRequest as exc:
            raise StoreError(f"Image data at {url} does not pass filtering: {exc.message}") from None  # Glance's words

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
        transfer = self._open(url, "GET", headers)
        try:
            _check(transfer.status_code, url)
        except BaseException:
            transfer.close()
            raise
        skip = offset if transfer.status_code == 200 else 0
        return _stream(transfer, url, skip, length)

    def size(self, url: str) -> int:
        with self._open(url, "HEAD", {"Accept-Encoding": "identity"}) as transfer:
            _check(transfer.status_code, url)
            value = transfer.headers.get("content-length")
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


def _check(status: int, url: str) -> None:
    if status in (404, 410):
        raise NotFound(f"Image data at {url} is missing (HTTP {status}).")
    if status >= 500:
        raise StoreUnavailable(f"The server of {url} failed (HTTP {status}).")
    if status not in (200, 206):
        raise StoreError(f"The server of {url} answered HTTP {status}.")


def _stream(transfer: fetch.Transfer, url: str, skip: int, length: int | None) -> Iterator[bytes]:
    remaining = length
    try:
        for chunk in transfer.chunks(raw=True):
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
    except fetch.Unreachable as exc:
        raise StoreUnavailable(f"Reading image data from {url} failed: {exc.message}") from None
    finally:
        transfer.close()
