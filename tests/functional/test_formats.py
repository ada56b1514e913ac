"""Disk-format safety on upload: real images made by qemu-img, mislabelled and malicious ones."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.disk_bytes import raw_disk_bytes
from tests.functional import images
from tests.functional.server import GlimpseServer

OCTETS = {"Content-Type": "application/octet-stream"}
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("disks")
    made = {fmt: images.make_image(d, qemu_fmt, "32M") for fmt, qemu_fmt in
            [("qcow2", "qcow2"), ("vmdk", "vmdk"), ("vhdx", "vhdx"), ("vdi", "vdi"), ("vhd", "vpc")]}  # fmt: skip
    raw = d / "disk.raw"
    raw.write_bytes(raw_disk_bytes(2 * MIB))
    made["raw"] = raw
    iso_dir = d / "iso-content"
    iso_dir.mkdir()
    (iso_dir / "README").write_text("glimpse")
    made["iso"] = d / "disk.iso"
    subprocess.run(["genisoimage", "-quiet", "-o", str(made["iso"]), str(iso_dir)], check=True)
    return made


def _upload(server: GlimpseServer, path: Path, disk_format: str) -> tuple[str, httpx.Response]:
    created = httpx.post(
        f"{server.url}/v2/images", json={"name": path.name, "disk_format": disk_format, "container_format": "bare"}
    )
    image_id = created.json()["id"]
    response = httpx.put(
        f"{server.url}/v2/images/{image_id}/file", content=path.read_bytes(), headers=OCTETS, timeout=60
    )
    return image_id, response


def _image(server: GlimpseServer, image_id: str) -> dict[str, object]:
    return dict(httpx.get(f"{server.url}/v2/images/{image_id}").json())


@pytest.mark.parametrize("fmt", ["qcow2", "vmdk", "vhdx", "vdi", "vhd", "raw", "iso"])
def test_honest_images_are_accepted_with_their_virtual_size(
    sqlite_server: GlimpseServer, disks: dict[str, Path], fmt: str
) -> None:
    image_id, response = _upload(sqlite_server, disks[fmt], fmt)
    assert response.status_code == 204, response.text
    image = _image(sqlite_server, image_id)
    assert image["status"] == "active"
    if fmt == "raw":
        assert image["virtual_size"] == image["size"] == disks[fmt].stat().st_size  # Glance's, for raw
    elif fmt != "iso":
        assert image["virtual_size"] == images.info(disks[fmt])["virtual-size"]  # what qemu itself reads


@pytest.mark.parametrize(
    ("content", "declared"),
    [("qcow2", "raw"), ("vmdk", "raw"), ("vhdx", "raw"), ("vdi", "raw"), ("vhd", "raw"),  # Glance lets these in
     ("qcow2", "vmdk"), ("raw", "qcow2"), ("vdi", "qcow2"), ("qcow2", "ploop"), ("iso", "qcow2")],
)  # fmt: skip
def test_mislabelled_images_are_refused_and_nothing_is_kept(
    sqlite_server: GlimpseServer, disks: dict[str, Path], content: str, declared: str
) -> None:
    before = set((sqlite_server.data_dir / "images").iterdir())
    image_id, response = _upload(sqlite_server, disks[content], declared)
    assert response.status_code == 400, response.text
    assert _image(sqlite_server, image_id)["status"] == "queued"
    assert set((sqlite_server.data_dir / "images").iterdir()) == before


@pytest.mark.parametrize(
    "craft", [images.qcow2_with_backing_file, images.qcow2_with_data_file, images.vmdk_with_external_extent]
)
def test_unsafe_images_are_refused(sqlite_server: GlimpseServer, tmp_path: Path, craft) -> None:  # type: ignore[no-untyped-def]
    path = craft(tmp_path)
    declared = "vmdk" if path.suffix == ".vmdk" else "qcow2"
    image_id, response = _upload(sqlite_server, path, declared)
    assert response.status_code == 400, response.text
    assert "not safe" in response.text or "does not match" in response.text
    assert _image(sqlite_server, image_id)["status"] == "queued"
    # Declared raw instead, the same bytes are refused as well.
    image_id, response = _upload(sqlite_server, path, "raw")
    assert response.status_code == 400


def test_vmdk_subformats_follow_the_operator(tmp_path: Path, disks: dict[str, Path]) -> None:
    server = GlimpseServer(tmp_path, extra_conf="[image_format]\nvmdk_allowed_types = streamOptimized").start()
    try:
        _, response = _upload(server, disks["vmdk"], "vmdk")  # qemu-img's default is monolithicSparse
        assert response.status_code == 400
        assert "subformat" in response.text
        stream = images.make_image(tmp_path, "vmdk", "8M", "subformat=streamOptimized")
        _, response = _upload(server, stream, "vmdk")
        assert response.status_code == 204
    finally:
        server.stop()


def test_operator_can_narrow_formats(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path, extra_conf="[image_format]\ndisk_formats = raw,qcow2").start()
    try:
        schema = httpx.get(f"{server.url}/v2/schemas/image").json()
        assert schema["properties"]["disk_format"]["enum"] == [None, "raw", "qcow2"]
        refused = httpx.post(f"{server.url}/v2/images", json={"disk_format": "vmdk"})
        assert refused.status_code == 400
    finally:
        server.stop()
