"""The real `glance` client (python-glanceclient) against glimpse serve on every database."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import httpx

from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients


def _json_table(output: str) -> dict[str, str]:
    """glance prints `| Property | Value |` tables; read them into a dict."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("Property", "") and not line.startswith("+"):
            rows[cells[0]] = cells[1]
    return rows


def test_glance_image_lifecycle(clients: Clients, tmp_path: Path) -> None:
    data = raw_disk_bytes(2 * 1024 * 1024 + 5)
    source = tmp_path / "disk.img"
    source.write_bytes(data)
    name = f"glance-{uuid.uuid4().hex[:8]}"
    created = _json_table(
        clients.glance(
            "image-create", "--name", name, "--disk-format", "raw", "--container-format", "bare",
            "--property", "os_distro=debian", "--min-ram", "128", "--file", str(source),
        ).stdout
    )  # fmt: skip
    image_id = created["id"]
    assert created["status"] == "active"
    assert created["checksum"] == hashlib.md5(data).hexdigest()
    # glance wraps long table cells, so read the full hash from the API.
    stored = httpx.get(f"{clients.endpoint}/v2/images/{image_id}").json()
    assert stored["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert created["min_ram"] == "128"

    listed = clients.glance("image-list", "--property-filter", "os_distro=debian", "--sort-key", "name").stdout
    assert image_id in listed
    assert image_id not in clients.glance("image-list", "--property-filter", "os_distro=arch").stdout

    updated = _json_table(
        clients.glance("image-update", "--name", f"{name}-2", "--property", "hw_disk_bus=scsi", image_id).stdout
    )
    assert updated["name"] == f"{name}-2"
    assert updated["hw_disk_bus"] == "scsi"
    removed = _json_table(clients.glance("image-update", "--remove-property", "hw_disk_bus", image_id).stdout)
    assert "hw_disk_bus" not in removed

    clients.glance("image-tag-update", image_id, "nightly")
    assert "nightly" in _json_table(clients.glance("image-show", image_id).stdout)["tags"]
    clients.glance("image-tag-delete", image_id, "nightly")
    assert "nightly" not in _json_table(clients.glance("image-show", image_id).stdout)["tags"]

    out = tmp_path / "out.img"
    clients.glance("image-download", "--file", str(out), image_id)  # glanceclient verifies the hash itself
    assert out.read_bytes() == data

    clients.glance("image-deactivate", image_id)
    assert _json_table(clients.glance("image-show", image_id).stdout)["status"] == "deactivated"
    clients.glance("image-reactivate", image_id)

    clients.glance("image-update", "--protected", "True", image_id)
    refused = clients.glance("image-delete", image_id, check=False)
    assert refused.returncode != 0
    assert "not permitted to delete" in refused.stderr  # glanceclient words every 403 on delete so
    clients.glance("image-update", "--protected", "False", image_id)
    clients.glance("image-delete", image_id)
    missing = clients.glance("image-show", image_id, check=False)
    assert missing.returncode != 0
    assert "No image found" in missing.stderr or "not found" in missing.stderr.lower()


def test_glance_create_then_upload_and_errors(clients: Clients, tmp_path: Path) -> None:
    created = _json_table(clients.glance("image-create", "--name", "two-step").stdout)
    image_id = created["id"]
    assert created["status"] == "queued"
    source = tmp_path / "data.raw"
    source.write_bytes(b"rawdisk" * 1000)
    # Formats missing: the upload is refused and the image stays queued.
    refused = clients.glance("image-upload", "--file", str(source), image_id, check=False)
    assert refused.returncode != 0
    assert "disk_format" in refused.stderr
    clients.glance("image-update", "--disk-format", "raw", "--container-format", "bare", image_id)
    clients.glance("image-upload", "--file", str(source), image_id)
    shown = _json_table(clients.glance("image-show", image_id).stdout)
    assert shown["status"] == "active" and shown["size"] == str(7000)
    bad = clients.glance("image-update", "--disk-format", "floppy", image_id, check=False)
    assert bad.returncode != 0
    clients.glance("image-delete", image_id)


def test_glance_schema_matches_what_the_api_accepts(clients: Clients) -> None:
    served = httpx.get(f"{clients.endpoint}/v2/schemas/image").json()
    assert served["additionalProperties"] == {"type": "string"}
    # Without --os-image-api-version glance discovers the version at /versions and caches the schema.
    clients.run("glance", "image-list")
    cached = json.loads((clients.home / ".glanceclient" / "image_schema.json").read_text())
    assert cached == served
    help_text = clients.run("glance", "help", "image-create").stdout
    # Options built from /v2/schemas/image, including the common properties.
    for option in ("--architecture", "--os-distro", "--min-disk", "--visibility", "--kernel-id"):
        assert option in help_text
