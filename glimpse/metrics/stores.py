"""A store measured: each operation's time and failures, by store id and operation, around any driver."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from glimpse.domain.entities import StoredData
from glimpse.domain.ports import Store
from glimpse.filespan import FileSpan
from glimpse.metrics.instruments import Metrics


class MeteredStore:
    """domain/ports.py:Store around another one; anything else asked of it is the driver's own."""

    def __init__(self, store: Store, metrics: Metrics) -> None:
        self.inner = store
        self._metrics = metrics

    def __getattr__(self, attribute: str) -> object:  # a driver's own attributes (datadir, bucket, ...)
        return getattr(self.inner, attribute)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def type(self) -> str:
        return self.inner.type

    @property
    def schemes(self) -> tuple[str, ...]:
        return self.inner.schemes

    @property
    def read_only(self) -> bool:
        return self.inner.read_only

    def add(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        with self._metrics.store_operation(self.name, "add"):
            return self.inner.add(image_id, chunks, max_size=max_size, expected_size=expected_size, hash_algo=hash_algo)

    def url_for(self, image_id: str) -> str:
        return self.inner.url_for(image_id)

    def get(self, url: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        with self._metrics.store_operation(self.name, "get"):
            chunks = self.inner.get(url, offset, length)
        if isinstance(chunks, FileSpan):
            # handed on as it is, so the server can send the file itself (zerocopysend) without its bytes crossing
            # Python: a local file opened without error seldom fails later, and that failure is not counted here
            return chunks
        return self._reading(chunks)

    def _reading(self, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """A failure while the data flows is a failed get too."""
        try:
            yield from chunks
        except Exception as exc:
            self._metrics.store_errors.labels(self.name, "get", type(exc).__name__).inc()
            raise
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def size(self, url: str) -> int:
        with self._metrics.store_operation(self.name, "size"):
            return self.inner.size(url)

    def delete(self, url: str) -> None:
        with self._metrics.store_operation(self.name, "delete"):
            self.inner.delete(url)

    def properties(self) -> dict[str, object]:
        return self.inner.properties()

    def recover(self, node: str) -> int:
        return self.inner.recover(node)

    def discard_partial(self, image_id: str, node: str) -> None:
        self.inner.discard_partial(image_id, node)
