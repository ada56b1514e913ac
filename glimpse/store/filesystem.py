"""The file store: one file per image in a folder, written under a temporary name, then renamed."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from glimpse.errors import NotFound, StoreError, StoreFull
from glimpse.filespan import FileSpan
from glimpse.store.base import HashingMeter, StoredData
from glimpse.store.partials import node_tag, partial_name, partial_pattern


class FilesystemStore:
    type = "file"
    schemes = ("file",)
    read_only = False

    def __init__(self, name: str, datadir: Path, node: str) -> None:
        self.name = name
        self.datadir = datadir.absolute()
        self.node = node_tag(node)
        self.datadir.mkdir(parents=True, exist_ok=True)

    def url_for(self, image_id: str) -> str:
        return f"file://{self.datadir / image_id}"

    def _path(self, url: str) -> Path:
        if not url.startswith("file://"):
            raise StoreError(f"Location {url} is not a file location.")
        path = Path(url[len("file://") :])
        if path.parent != self.datadir:
            raise StoreError(f"Location {url} is outside the file store.")
        return path

    def add(
        self, image_id: str, chunks: Iterable[bytes], *, max_size: int, expected_size: int | None, hash_algo: str
    ) -> StoredData:
        final = self.datadir / image_id
        partial = self.datadir / partial_name(image_id, self.node)
        meter = HashingMeter(max_size, hash_algo)
        try:
            with open(partial, "xb") as out:
                for chunk in chunks:
                    meter.update(chunk)
                    out.write(chunk)
                meter.check_expected(expected_size)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, final)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFull("Image storage media is full.") from exc
            raise StoreError(f"The file store could not write image data: {exc.strerror}.") from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return meter.result(self.url_for(image_id))

    def get(self, url: str, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        path = self._path(url)
        try:
            handle = open(path, "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"Image data at {url} is missing.") from exc
        return FileSpan(handle, offset, length, path=str(path))

    def size(self, url: str) -> int:
        try:
            return self._path(url).stat().st_size
        except FileNotFoundError as exc:
            raise NotFound(f"Image data at {url} is missing.") from exc

    def delete(self, url: str) -> None:
        self._path(url).unlink(missing_ok=True)

    def properties(self) -> dict[str, object]:
        return {"datadir": str(self.datadir)}

    def stored_ids(self) -> list[str]:
        """Names of the complete files held (an image id each; partial and attempt files have dots)."""
        return sorted(p.name for p in self.datadir.iterdir() if p.is_file() and "." not in p.name)

    def recover(self, node: str) -> int:
        return _discard(self.datadir, partial_pattern(node_tag(node)))

    def discard_partial(self, image_id: str, node: str) -> None:
        _discard(self.datadir, partial_pattern(node_tag(node), image_id))


def _discard(datadir: Path, pattern: str) -> int:
    removed = 0
    for path in datadir.glob(pattern):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
