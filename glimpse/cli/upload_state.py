"""What `glimpse image upload` remembers about an unfinished upload, so `--resume` can pick it up: one small JSON
file per (server, file) under the user's cache folder, written before the first byte goes out and removed once the
image is active. It names the file as it was (size and modification time): a file changed since is never resumed
into the image made of its old bytes."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/glimpse/uploads (~/.cache/... when unset), as other command-line tools keep theirs."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "glimpse" / "uploads"


@dataclass(frozen=True)
class Part:
    """One tus upload: bytes [start, start + length) of the file."""

    url: str
    start: int
    length: int


@dataclass(frozen=True)
class FileIdentity:
    path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path) -> FileIdentity:
        stat = path.stat()
        return cls(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@dataclass(frozen=True)
class UploadState:
    endpoint: str
    file: FileIdentity
    image_id: str
    parts: tuple[Part, ...]
    final: str | None = None  # the final concatenation's URL, once made

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> UploadState:
        raw = json.loads(text)
        return cls(
            endpoint=str(raw["endpoint"]),
            file=FileIdentity(**raw["file"]),
            image_id=str(raw["image_id"]),
            parts=tuple(Part(str(p["url"]), int(p["start"]), int(p["length"])) for p in raw["parts"]),
            final=raw.get("final"),
        )


class StateFiles:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or cache_dir()

    def path_for(self, endpoint: str, file: Path) -> Path:
        key = hashlib.sha256(f"{endpoint}\n{file.resolve()}".encode()).hexdigest()[:32]
        return self.folder / f"{key}.json"

    def load(self, endpoint: str, file: Path) -> UploadState | None:
        """The state saved for this file on this server; None when there is none or it cannot be read."""
        try:
            return UploadState.from_json(self.path_for(endpoint, file).read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self, state: UploadState, file: Path) -> None:
        """Written whole or not at all (a kill -9 half-way leaves the previous state)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.path_for(state.endpoint, file)
        temporary = target.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(state.to_json())
        os.replace(temporary, target)

    def remove(self, endpoint: str, file: Path) -> None:
        self.path_for(endpoint, file).unlink(missing_ok=True)
