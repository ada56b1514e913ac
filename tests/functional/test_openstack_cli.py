"""The real `openstack image ...` client against glimpse serve, on SQLite, MariaDB and PostgreSQL."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import httpx

from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.images import make_image
from tests.functional.server import GlimpseServer


def _image_file(tmp_path: Path, size: int = 3 * 1024 * 1024 + 17) -> Path:
    path = tmp_path / "disk.raw"
    path.write_bytes(raw_disk_bytes(size))
    return path


def test_create_upload_list_show_download_delete(clients: Clients, tmp_path: Path) -> None:
    source = make_image(tmp_path, "qcow2", "64M")  # a real qcow2: its content is checked against disk_format
    name = f"cirros-{uuid.uuid4().hex[:8]}"
    created = clients.openstack_json(
        "image", "create", "--disk-format", "qcow2", "--container-format", "bare", "--file", str(source),
        "--property", "os_distro=cirros", "--property", "architecture=x86_64", "--tag", "golden",
        "--min-disk", "1", "--min-ram", "64", name,
    )  # fmt: skip
    data = source.read_bytes()
    assert created["status"] == "active"
    assert created["size"] == len(data)
    assert created["checksum"] == hashlib.md5(data).hexdigest()
    assert created["properties"]["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert created["properties"]["os_distro"] == "cirros"
    assert created["virtual_size"] == 64 * 1024 * 1024  # read from the qcow2 header

    listed = clients.openstack_json("image", "list", "--property", "os_distro=cirros", "--long")
    assert [row["Name"] for row in listed] == [name]
    assert clients.openstack_json("image", "list", "--property", "os_distro=nothing") == []

    shown = clients.openstack_json("image", "show", name)
    assert shown["id"] == created["id"]
    assert shown["min_disk"] == 1 and shown["min_ram"] == 64
    assert shown["tags"] == ["golden"]

    out = tmp_path / "downloaded.raw"
    clients.openstack("image", "save", "--file", str(out), name)
    assert out.read_bytes() == data

    clients.openstack("image", "delete", name)
    assert clients.openstack_json("image", "list", "--name", name) == []
    missing = clients.openstack("image", "show", created["id"], check=False)
    assert missing.returncode != 0
    assert "No Image found" in missing.stderr or "No image found" in missing.stderr


def test_set_unset_tags_protect_deactivate(clients: Clients, server: GlimpseServer, tmp_path: Path) -> None:
    source = _image_file(tmp_path, 4096)
    name = f"img-{uuid.uuid4().hex[:8]}"
    image = clients.openstack_json(
        "image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", str(source), name
    )
    clients.openstack(
        "image", "set", "--name", f"{name}-v2", "--property", "os_version=22.04", "--tag", "blue",
        "--min-disk", "5", "--protected", image["id"],
    )  # fmt: skip
    shown = clients.openstack_json("image", "show", image["id"])
    assert shown["name"] == f"{name}-v2"
    assert shown["properties"]["os_version"] == "22.04"
    assert "blue" in shown["tags"]
    assert shown["min_disk"] == 5
    assert shown["protected"] is True

    refused = clients.openstack("image", "delete", image["id"], check=False)
    assert refused.returncode != 0
    assert clients.openstack_json("image", "show", image["id"])["status"] == "active"

    clients.openstack("image", "unset", "--property", "os_version", "--tag", "blue", image["id"])
    shown = clients.openstack_json("image", "show", image["id"])
    assert "os_version" not in shown["properties"]
    assert "blue" not in shown["tags"]

    clients.openstack("image", "set", "--deactivate", image["id"])
    assert clients.openstack_json("image", "show", image["id"])["status"] == "deactivated"
    member_download = httpx.get(
        f"{server.url}/v2/images/{image['id']}/file", headers={"X-Project-Id": "other", "X-Roles": "member"}
    )
    assert member_download.status_code in (403, 404)
    admin_download = httpx.get(f"{server.url}/v2/images/{image['id']}/file")
    assert admin_download.status_code == 200 and admin_download.content == source.read_bytes()
    clients.openstack("image", "set", "--activate", image["id"])
    assert clients.openstack_json("image", "show", image["id"])["status"] == "active"

    clients.openstack("image", "set", "--unprotected", image["id"])
    clients.openstack("image", "delete", image["id"])
    assert clients.openstack("image", "show", image["id"], check=False).returncode != 0


def test_visibility_and_hidden(clients: Clients) -> None:
    name = f"vis-{uuid.uuid4().hex[:8]}"
    public = clients.openstack_json("image", "create", "--public", f"{name}-public")
    community = clients.openstack_json("image", "create", "--community", f"{name}-community")
    hidden = clients.openstack_json("image", "create", f"{name}-hidden")
    clients.openstack("image", "set", "--hidden", hidden["id"])
    assert public["visibility"] == "public"
    assert community["visibility"] == "community"

    names = {row["Name"] for row in clients.openstack_json("image", "list")}
    assert f"{name}-public" in names
    assert f"{name}-hidden" not in names  # os_hidden images stay out of default lists
    assert f"{name}-community" not in names  # community images are listed when asked for
    community_names = {row["Name"] for row in clients.openstack_json("image", "list", "--community")}
    assert f"{name}-community" in community_names
    hidden_names = {row["Name"] for row in clients.openstack_json("image", "list", "--hidden")}
    assert f"{name}-hidden" in hidden_names
    for image in (public, community, hidden):
        clients.openstack("image", "delete", image["id"])


def test_pagination_and_sort(clients: Clients) -> None:
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    ids = [clients.openstack_json("image", "create", "--property", f"batch={prefix}", f"{prefix}-{i:02d}")["id"]
           for i in range(7)]  # fmt: skip
    # The servers here page by 4 (limit_param_default), so the client must follow `next` links.
    listed = clients.openstack_json("image", "list", "--property", f"batch={prefix}", "--sort", "name:asc")
    assert [row["Name"] for row in listed] == [f"{prefix}-{i:02d}" for i in range(7)]
    descending = clients.openstack_json("image", "list", "--property", f"batch={prefix}", "--sort", "name:desc")
    assert [row["Name"] for row in descending] == [f"{prefix}-{i:02d}" for i in reversed(range(7))]
    clients.openstack("image", "delete", *ids)
