"""The file store: one file per image in a folder, written under a temporary name, then renamed."""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from glimpse.errors import GlimpseError, NotFound, StoreError, StoreFull
from glimpse.filespan import FileSpan
from glimpse.store.base import HashingMeter, StoredData
from glimpse.store.partials import node_tag, partial_name, partial_pattern, upload_tag


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
            raise _write_error(exc) from exc
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return meter.result(self.url_for(image_id))

    # --- pieces (tus uploads): one file per PATCH, `<image id>.tus-<upload id>.<tag>`, joined at the end ---------
    def begin_pieces(self, image_id: str, upload_id: str) -> str:
        return json.dumps({"prefix": f"{image_id}.tus-{upload_id.replace('-', '')}", "pieces": []})

    def append_piece(self, handle: str, chunks: Iterable[bytes]) -> str:
        state = json.loads(handle)
        piece = self.datadir / f"{state['prefix']}.{upload_tag()}"
        size = 0
        try:
            with open(piece, "xb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:
            piece.unlink(missing_ok=True)
            raise _write_error(exc) from exc
        except BaseException:
            piece.unlink(missing_ok=True)
            raise
        if size == 0:
            piece.unlink(missing_ok=True)
            return handle
        return json.dumps({**state, "pieces": [*state["pieces"], piece.name]})

    def assemble(self, image_id: str, handles: Sequence[str]) -> str:
        pieces = [self.datadir / name for handle in handles for name in json.loads(handle)["pieces"]]
        final = self.datadir / image_id
        if len(pieces) == 1:  # the usual case, one PATCH from start to end: nothing to copy
            os.replace(pieces[0], final)
            return self.url_for(image_id)
        joined = self.datadir / partial_name(image_id, self.node)
        try:
            with open(joined, "xb") as out:
                for piece in pieces:
                    with open(piece, "rb") as source:
                        shutil.copyfileobj(source, out, 4 * 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.replace(joined, final)
        except OSError as exc:
            joined.unlink(missing_ok=True)
            raise _write_error(exc) from exc
        except BaseException:
            joined.unlink(missing_ok=True)
            raise
        for piece in pieces:
            piece.unlink(missing_ok=True)
        return self.url_for(image_id)

    def drop_pieces(self, handle: str, keep: str | None = None) -> None:
        state = json.loads(handle)
        if keep is None:  # the whole upload: pieces of PATCHes that never committed too
            _discard(self.datadir, f"{state['prefix']}.*")
            return
        for name in set(state["pieces"]) - set(json.loads(keep)["pieces"]):
            (self.datadir / name).unlink(missing_ok=True)

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


def _write_error(exc: OSError) -> GlimpseError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreFull("Image storage media is full.")
    return StoreError(f"The file store could not write image data: {exc.strerror}.")


def _discard(datadir: Path, pattern: str) -> int:
    removed = 0
    for path in datadir.glob(pattern):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
