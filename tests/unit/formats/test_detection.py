from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from glimpse.formats.detection import HEAD_BYTES, Guess, guess_formats
from tests.disk_bytes import raw_disk_bytes


def _head(tmp_path: Path, fmt: str) -> bytes:
    disk = tmp_path / f"disk.{fmt}"
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(disk), "64M"], check=True)
    return disk.read_bytes()[:HEAD_BYTES]


@pytest.mark.parametrize(("qemu", "expected"), [("qcow2", "qcow2"), ("vmdk", "vmdk"), ("vhdx", "vhdx"),
                                                ("vpc", "vhd"), ("vdi", "vdi")])  # fmt: skip
def test_the_content_decides_whatever_the_name(tmp_path: Path, qemu: str, expected: str) -> None:
    assert guess_formats(_head(tmp_path, qemu), "cloud.img") == Guess(expected, None, "content")


def test_an_iso_is_seen_in_its_content(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.txt").write_text("hello")
    iso = tmp_path / "cd.bin"
    subprocess.run(["genisoimage", "-quiet", "-o", str(iso), str(tmp_path / "files")], check=True)
    assert guess_formats(iso.read_bytes()[:HEAD_BYTES], "cd.bin") == Guess("iso", None, "content")


def test_plain_content_goes_by_the_name_only_for_formats_content_cannot_show() -> None:
    noise = raw_disk_bytes(300_000)
    assert guess_formats(noise, "disk.ploop") == Guess("ploop", None, "extension")
    assert guess_formats(noise, "KERNEL.AKI") == Guess("aki", "aki", "extension")
    assert guess_formats(noise, "disk.img") == Guess("raw", None, "extension")
    assert guess_formats(noise, "appliance.ova") == Guess("raw", "ova", "content")
    # qcow2's header would be there: the name is wrong, and the server would refuse qcow2.
    assert guess_formats(noise, "fake.qcow2") == Guess("raw", None, "content")
    assert guess_formats(noise, "noname") == Guess("raw", None, "content")
