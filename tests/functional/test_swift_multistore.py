"""Multi-store `glimpse serve` with a file store and a swift store on a real all-in-one OpenStack Swift
(tests/contract/servers.py): `glance image-create --store cold` with the real glance client, download and
compare, and `glimpse store migrate --from local --to cold --verify` moving images into Swift."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.contract.fixtures import swift_server  # noqa: F401  (a real Swift, once per run)
from tests.contract.servers import SwiftServer
from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.server import GlimpseServer

MIB = 1024 * 1024


def _conf(swift: SwiftServer, container: str) -> str:
    return f"""enabled_backends = local:file, cold:swift

[glance_store]
default_backend = local

[local]
store_description = Local disks

[cold]
store_description = Swift
weight = 50
swift_store_auth_address = {swift.auth_url}
swift_store_user = {swift.user}
swift_store_key = {swift.key}
swift_store_auth_version = 1
swift_store_container = {container}
swift_store_create_container_on_put = true
swift_store_large_object_size = 5
swift_store_large_object_chunk_size = 2
"""


@pytest.fixture(scope="module")
def multi(swift_server: SwiftServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GlimpseServer, str]]:  # noqa: F811
    container = f"glimpse-{uuid.uuid4().hex[:12]}"
    srv = GlimpseServer(tmp_path_factory.mktemp("glimpse-swift"), extra_conf=_conf(swift_server, container)).start()
    yield srv, container
    srv.stop()


@pytest.fixture
def api(multi: tuple[GlimpseServer, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=multi[0].url, timeout=60) as client:
        yield client


def _table(output: str) -> dict[str, str]:
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("Property", "") and not line.startswith("+"):
            rows[cells[0]] = cells[1]
    return rows


def _objects(swift: SwiftServer, container: str) -> list[str]:
    conn = swift.connection()
    try:
        return [o["name"] for o in conn.get_container(container, full_listing=True)[1]]
    finally:
        conn.close()


def test_glance_cli_to_swift_then_migrate_into_swift(
    multi: tuple[GlimpseServer, str],
    api: httpx.Client,
    swift_server: SwiftServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    server, container = multi
    assert "Glimpse does not know" not in server.log.read_text()  # the [cold] section is all known options
    detail = {s["id"]: s for s in api.get("/v2/info/stores/detail").json()["stores"]}
    assert detail["cold"]["type"] == "swift" and detail["cold"]["properties"]["container"] == container
    assert swift_server.key not in str(detail)

    clients = Clients(server.url, tmp_path / "home")
    data = raw_disk_bytes(7 * MIB + 13)  # above swift_store_large_object_size: segments and a manifest
    source = tmp_path / "big.img"
    source.write_bytes(data)
    created = _table(
        clients.glance(
            "image-create", "--name", "to-swift", "--disk-format", "raw", "--container-format", "bare",
            "--store", "cold", "--file", str(source),
        ).stdout
    )  # fmt: skip
    image_id = created["id"]
    assert created["status"] == "active"
    shown = api.get(f"/v2/images/{image_id}").json()
    assert shown["stores"] == "cold"
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    in_swift = _objects(swift_server, container)
    assert image_id in in_swift and len([n for n in in_swift if n.startswith(f"{image_id}-")]) == 4
    target = tmp_path / "big.out"
    clients.glance("image-download", "--file", str(target), image_id)
    assert target.read_bytes() == data
    ranged = api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=2097100-2097199"})
    assert ranged.status_code == 206 and ranged.content == data[2097100:2097200]

    # Images in the file store move into Swift: copied, hash-checked, read back, the file copy dropped.
    payloads = [raw_disk_bytes(n) for n in (0, 1, 64 * 1024, 6 * MIB + 1)]
    local = {}
    for n, payload in enumerate(payloads):
        path = tmp_path / f"local-{n}.img"
        path.write_bytes(payload)
        row = _table(
            clients.glance(
                "image-create", "--name", f"local-{n}", "--disk-format", "raw", "--container-format", "bare",
                "--store", "local", "--file", str(path),
            ).stdout
        )  # fmt: skip
        local[row["id"]] = payload
    moved = server.command("store", "migrate", "--from", "local", "--to", "cold", "--verify", "--delete-source")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert " 0 failed" in moved.stdout, moved.stdout
    in_swift = _objects(swift_server, container)
    for moved_id, payload in local.items():
        assert api.get(f"/v2/images/{moved_id}").json()["stores"] == "cold"
        assert moved_id in in_swift
        out = tmp_path / f"{moved_id}.out"
        clients.glance("image-download", "--file", str(out), moved_id)
        assert out.read_bytes() == payload
    assert not set(local) & {p.name for p in (server.data_dir / "images" / "local").iterdir()}
    verified = server.command("store", "verify", "--store", "cold")
    assert verified.returncode == 0 and "0 problem(s)" in verified.stdout, verified.stdout + verified.stderr

    # Deleting the images removes their objects and segments from Swift.
    for gone in [image_id, *local]:
        assert api.delete(f"/v2/images/{gone}").status_code == 204
    ids = [image_id, *local]
    assert not [n for n in _objects(swift_server, container) if any(n.startswith(i) for i in ids)]
