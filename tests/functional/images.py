"""Real disk images made by qemu-img (Debian's qemu-utils), and crafted unsafe ones."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path


def qemu_img() -> str:
    path = shutil.which("qemu-img")
    if path is None:
        raise RuntimeError("qemu-img is missing: the tests need Debian's qemu-utils (scripts/test installs it).")
    return path


def make_image(directory: Path, fmt: str, size: str = "64M", *options: str) -> Path:
    """An empty disk image of `fmt` with `size` of virtual size; options go to `qemu-img create -o`."""
    path = directory / f"disk-{fmt}-{size}.{fmt}"
    args = [qemu_img(), "create", "-q", "-f", fmt]
    if options:
        args += ["-o", ",".join(options)]
    subprocess.run([*args, str(path), size], check=True)
    return path


def info(path: Path) -> dict[str, object]:
    out = subprocess.run([qemu_img(), "info", "--output=json", str(path)], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def qcow2_with_backing_file(directory: Path) -> Path:
    """A qcow2 whose backing file is a host file: reading it through qemu would read /etc/passwd."""
    path = directory / "backing.qcow2"
    subprocess.run(
        [qemu_img(), "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/passwd", str(path), "1M"], check=True
    )
    return path


def qcow2_with_data_file(directory: Path) -> Path:
    """A qcow2 with an external data file (CVE-2024-32498's shape)."""
    data = directory / "external.raw"
    path = directory / "datafile.qcow2"
    subprocess.run([qemu_img(), "create", "-q", "-f", "qcow2", "-o", f"data_file={data}", str(path), "1M"], check=True)
    return path


def vmdk_with_external_extent(directory: Path) -> Path:
    """A monolithicSparse header whose embedded descriptor names a host file as an extent (CVE-2022-47951)."""
    path = make_image(directory, "vmdk", "1M", "subformat=monolithicSparse")
    raw = bytearray(path.read_bytes())
    desc_offset = struct.unpack_from("<Q", raw, 28)[0] * 512  # descriptorOffset, in sectors
    desc_size = struct.unpack_from("<Q", raw, 36)[0] * 512
    descriptor = raw[desc_offset : desc_offset + desc_size].split(b"\0", 1)[0].decode()
    evil = descriptor.replace('RW 2048 SPARSE "disk-vmdk-1M.vmdk"', 'RW 2048 FLAT "/etc/shadow" 0')
    assert evil != descriptor, descriptor
    encoded = evil.encode().ljust(desc_size, b"\0")
    raw[desc_offset : desc_offset + desc_size] = encoded
    out = directory / "extent.vmdk"
    out.write_bytes(bytes(raw))
    return out
