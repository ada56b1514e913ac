"""The rules of `glimpse image upload` that need no server: parts, formats, saved states, which URLs it trusts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from glimpse.cli.tus_client import Backoff, belongs_to
from glimpse.cli.upload import guess_disk_format, split
from glimpse.cli.upload_state import FileIdentity, Part, StateFiles, UploadState
from tests.disk_bytes import raw_disk_bytes

IMAGE = "0b1c2d3e-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("size", "parallel", "parts"),
    [
        (10, 3, [(0, 4), (4, 4), (8, 2)]),
        (9, 3, [(0, 3), (3, 3), (6, 3)]),
        (2, 5, [(0, 1), (1, 1)]),  # never an empty part
        (0, 4, [(0, 0)]),  # an empty file is one empty upload
        (7, 1, [(0, 7)]),
    ],
)
def test_parts_cover_the_file_once_in_order(size: int, parallel: int, parts: list[tuple[int, int]]) -> None:
    assert split(size, parallel) == parts
    assert sum(length for _, length in parts) == size


def test_the_disk_format_comes_from_the_content_then_the_name(tmp_path: Path) -> None:
    qcow2 = tmp_path / "cloud.img"  # a qcow2 named .img, as Ubuntu's cloud images are
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(qcow2), "1G"], check=True)
    assert guess_disk_format(qcow2) == "qcow2"
    vmdk = tmp_path / "disk.bin"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(vmdk), "64M"], check=True)
    assert guess_disk_format(vmdk) == "vmdk"
    noise = raw_disk_bytes(300_000)
    for name, expected in (("a.iso", "iso"), ("a.vhdx", "vhdx"), ("a.raw", "raw"), ("a.unknown", "raw")):
        (tmp_path / name).write_bytes(noise)  # nothing in the content: the extension decides
        assert guess_disk_format(tmp_path / name) == expected


def test_a_saved_state_round_trips_and_is_keyed_by_server_and_file(tmp_path: Path) -> None:
    file = tmp_path / "disk.raw"
    file.write_bytes(b"x" * 100)
    states = StateFiles(tmp_path / "states")
    parts = (Part(f"http://a:1/v2/images/{IMAGE}/uploads/u1", 0, 50), Part("http://a:1/x", 50, 50))
    state = UploadState("http://a:1", FileIdentity.of(file), IMAGE, parts)
    states.save(state, file)
    assert states.load("http://a:1", file) == state
    assert states.load("http://b:1", file) is None  # another server: nothing to resume there
    states.path_for("http://a:1", file).write_text("{not json")
    assert states.load("http://a:1", file) is None  # a damaged state is no state
    states.remove("http://a:1", file)
    assert not states.path_for("http://a:1", file).exists()


def test_a_changed_file_has_another_identity(tmp_path: Path) -> None:
    file = tmp_path / "disk.raw"
    file.write_bytes(b"x" * 100)
    before = FileIdentity.of(file)
    file.write_bytes(b"y" * 100)
    os.utime(file, ns=(before.mtime_ns + 10**9, before.mtime_ns + 10**9))
    assert FileIdentity.of(file) != before


def test_only_uploads_of_the_image_on_the_same_server_are_trusted() -> None:
    base = "http://glimpse:9292"
    assert belongs_to(f"{base}/v2/images/{IMAGE}/uploads/u1", base, IMAGE)
    assert not belongs_to(f"http://elsewhere:9292/v2/images/{IMAGE}/uploads/u1", base, IMAGE)
    assert not belongs_to(f"https://glimpse:9292/v2/images/{IMAGE}/uploads/u1", base, IMAGE)
    assert not belongs_to(f"{base}/v2/images/other/uploads/u1", base, IMAGE)


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(attempts=5, first=1.0, most=8.0)
    assert 0.75 <= backoff.delay(1) <= 1.25
    assert 3.0 <= backoff.delay(3) <= 5.0
    assert backoff.delay(20) <= 10.0
