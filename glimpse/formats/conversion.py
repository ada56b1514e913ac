"""Format conversion and decompression for imports: qemu-img convert, gzip and zstd.

Only data that already passed the format inspector (formats/inspection.py) reaches qemu-img, and
qemu-img is always told the input format (-f), so it never probes: the CVEs of this family came
from qemu-img following what an image's header asked for. Every qemu-img also runs under an
address-space and a CPU-time limit, so a crafted image cannot exhaust the host.
"""

from __future__ import annotations

import gzip
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from glimpse.errors import BadRequest, GlimpseError

if TYPE_CHECKING:  # zstandard is imported when a zstd file is met
    from zstandard import ZstdDecompressionReader

QEMU_NAMES = {"vhd": "vpc"}  # Glance's disk_format names that qemu-img spells otherwise
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class ConversionFailed(GlimpseError):
    pass


class ConversionLimitExceeded(BadRequest):
    """The image needed more memory or CPU time than qemu-img may use: the data is refused (400)."""


@dataclass(frozen=True)
class ProcessLimits:
    """What one qemu-img process may use (Glance caps `qemu-img info` at 1 GiB and 30 s the same way)."""

    address_space: int = 1024 * 1024 * 1024  # bytes of virtual memory
    cpu_seconds: int = 1800


# Runs in the child before qemu-img replaces it: no preexec_fn in a threaded server, and no binary needed.
_LIMITED_EXEC = (
    "import os, resource, sys\n"
    "space, cpu = int(sys.argv[1]), int(sys.argv[2])\n"
    "resource.setrlimit(resource.RLIMIT_AS, (space, space))\n"
    "resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def qemu_img() -> str:
    path = shutil.which("qemu-img")
    if path is None:
        raise ConversionFailed("qemu-img is not installed (Debian's qemu-utils): images cannot be converted.")
    return path


def limited(args: list[str], limits: ProcessLimits) -> list[str]:
    """The command line that runs `args` under the address-space and CPU-time limits."""
    return [sys.executable, "-c", _LIMITED_EXEC, str(limits.address_space), str(limits.cpu_seconds), *args]


def run_qemu_img(args: list[str], limits: ProcessLimits, timeout: float, what: str) -> subprocess.CompletedProcess[str]:
    """qemu-img with its resource limits; ConversionLimitExceeded when it ran out of them."""
    result = subprocess.run(limited([qemu_img(), *args], limits), capture_output=True, text=True, timeout=timeout)
    if result.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise ConversionLimitExceeded(
            f"{what} needed more than the {limits.cpu_seconds} s of CPU time qemu-img may use."
        )
    stderr = result.stderr.lower()
    out_of_memory = any(s in stderr for s in ("cannot allocate", "out of memory", "resource temporarily unavailable"))
    if result.returncode != 0 and (out_of_memory or result.returncode == -signal.SIGABRT):
        raise ConversionLimitExceeded(
            f"{what} needed more than the {limits.address_space // (1024 * 1024)} MiB of memory qemu-img may use."
        )
    return result


def convert(
    source: Path,
    source_format: str,
    target_format: str,
    output: Path,
    timeout: float = 3600,
    limits: ProcessLimits | None = None,
) -> None:
    args = ["convert", "-q", "-f", QEMU_NAMES.get(source_format, source_format)]
    args += ["-O", QEMU_NAMES.get(target_format, target_format), str(source), str(output)]
    what = f"Converting {source_format} to {target_format}"
    try:
        result = run_qemu_img(args, limits or ProcessLimits(), timeout, what)
    except subprocess.TimeoutExpired:
        output.unlink(missing_ok=True)
        raise ConversionFailed(f"Converting to {target_format} took longer than {timeout:.0f} s.") from None
    except ConversionLimitExceeded:
        output.unlink(missing_ok=True)
        raise
    if result.returncode != 0:
        output.unlink(missing_ok=True)
        raise ConversionFailed(f"{what} failed: {result.stderr.strip()}")


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


def _reader(kind: str, source: Path) -> gzip.GzipFile | ZstdDecompressionReader:
    if kind == "gzip":
        return gzip.open(source, "rb")
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(open(source, "rb"), closefd=True)
