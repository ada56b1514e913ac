"""Format conversion and decompression for imports: qemu-img convert, gzip and zstd.

Only data that already passed the format inspector (formats/inspection.py) reaches qemu-img, and
qemu-img is always told the input format (-f), so it never probes: the CVEs of this family came
from qemu-img following what an image's header asked for.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

from glimpse.errors import BadRequest, GlimpseError

QEMU_NAMES = {"vhd": "vpc"}  # Glance's disk_format names that qemu-img spells otherwise
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ConversionFailed(GlimpseError):
    pass


def qemu_img() -> str:
    path = shutil.which("qemu-img")
    if path is None:
        raise ConversionFailed("qemu-img is not installed (Debian's qemu-utils): images cannot be converted.")
    return path


def convert(source: Path, source_format: str, target_format: str, output: Path, timeout: float = 3600) -> None:
    args = [qemu_img(), "convert", "-q", "-f", QEMU_NAMES.get(source_format, source_format)]
    args += ["-O", QEMU_NAMES.get(target_format, target_format), str(source), str(output)]
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        output.unlink(missing_ok=True)
        raise ConversionFailed(f"Converting to {target_format} took longer than {timeout:.0f} s.") from None
    if result.returncode != 0:
        output.unlink(missing_ok=True)
        raise ConversionFailed(f"Converting {source_format} to {target_format} failed: {result.stderr.strip()}")


def compression_of(path: Path) -> str | None:
    with open(path, "rb") as f:
        head = f.read(4)
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return None


def decompress(source: Path, output: Path, max_size: int) -> None:
    """Unpack a gzip or zstd file, refusing output beyond max_size (a small bomb cannot fill the disk)."""
    kind = compression_of(source)
    if kind is None:
        raise BadRequest("The container format is 'compressed' but the data is neither gzip nor zstd.")
    written = 0
    try:
        with _reader(kind, source) as reader, open(output, "wb") as out:
            while chunk := reader.read(1024 * 1024):
                written += len(chunk)
                if written > max_size:
                    raise BadRequest(f"The decompressed image exceeds the size limit of {max_size} bytes.")
                out.write(chunk)
    except (OSError, EOFError) as exc:
        output.unlink(missing_ok=True)
        raise BadRequest(f"The {kind} data could not be decompressed: {exc}") from None
    except BaseException:
        output.unlink(missing_ok=True)
        raise


def _reader(kind: str, source: Path):  # type: ignore[no-untyped-def]
    if kind == "gzip":
        return gzip.open(source, "rb")
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(open(source, "rb"), closefd=True)
