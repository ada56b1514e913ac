"""Switching from a real Glance: its database, filled through its own API, imported by `glimpse db import-glance`.

Glance 33 (PyPI, benchmarks/install-glance) runs in no-auth mode with a file store, on SQLite and on a fresh
MariaDB or PostgreSQL database; a real `glimpse serve` then reads the imported database (of the same kind)
and Glance's own image folder, and must answer as Glance does.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import MetaData, Table, create_engine

from tests.disk_bytes import raw_disk_bytes
from tests.functional.databases import fresh_database
from tests.functional.server import GlimpseServer

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from benchmarks.glance_baseline import VENV, GlanceServer  # noqa: E402

# The fields of GET /v2/images/{id} both servers must agree on (Glimpse serves them all).
FIELDS = (
    "id", "name", "status", "visibility", "owner", "protected", "os_hidden", "checksum", "os_hash_algo",
    "os_hash_value", "size", "virtual_size", "container_format", "disk_format", "min_disk", "min_ram",
    "created_at", "updated_at", "tags",
)  # fmt: skip
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OWNER, FRIEND, OTHER = "prj-owner", "prj-friend", "prj-other"


@pytest.fixture(scope="module")
def glance_venv() -> Path:
    """The real Glance; installed on first use (as scripts/test does for CI)."""
    if not (VENV / ".installed").is_file():
        subprocess.run(["bash", str(ROOT / "benchmarks" / "install-glance")], check=True, timeout=1800)
    return VENV


@dataclass
class Filled:
    """A Glance filled through its API, and what the test put there."""

    glance: GlanceServer
    database_url: str
    images_dir: Path
    ids: dict[str, str] = field(default_factory=dict)
    data: dict[str, bytes] = field(default_factory=dict)


def _create(api: httpx.Client, **body: object) -> str:
    response = api.post("/v2/images", json={"container_format": "bare", "disk_format": "raw", **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _upload(api: httpx.Client, image_id: str, data: bytes) -> None:
    response = api.put(
        f"/v2/images/{image_id}/file", content=data, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.status_code == 204, response.text


def _fill(glance: GlanceServer) -> tuple[dict[str, str], dict[str, bytes]]:
    api = httpx.Client(base_url=glance.url, timeout=60)
    ids, data = {}, {}
    ids["public"] = _create(
        api, name="debian-13", visibility="public", owner=OWNER, min_disk=2, min_ram=512, tags=["debian", "lts"],
        os_distro="debian", os_version="13", hw_disk_bus="scsi",
    )  # fmt: skip
    ids["shared"] = _create(api, name="shared-one", visibility="shared", owner=OWNER, architecture="x86_64")
    ids["community"] = _create(api, name="community-one", visibility="community", owner=OTHER, tags=["community"])
    ids["protected"] = _create(api, name="kept", visibility="private", owner=OWNER, protected=True)
    ids["hidden"] = _create(api, name="hidden", visibility="private", owner=OWNER, os_hidden=True)
    ids["deactivated"] = _create(api, name="old", visibility="public", owner=OWNER)
    ids["deleted"] = _create(api, name="gone", visibility="private", owner=OWNER)
    ids["queued"] = _create(api, name="no-data-yet", owner=OTHER)
    for key, size in (("public", 300_000), ("shared", 70_001), ("community", 5_000), ("deactivated", 4_096),
                      ("deleted", 1_000), ("protected", 12_345)):  # fmt: skip
        data[key] = raw_disk_bytes(size)
        _upload(api, ids[key], data[key])
    for member in (FRIEND, OTHER):
        added = api.post(f"/v2/images/{ids['shared']}/members", json={"member": member})
        assert added.status_code == 200, added.text
    accepted = api.put(f"/v2/images/{ids['shared']}/members/{FRIEND}", json={"status": "accepted"})
    assert accepted.status_code == 200, accepted.text
    rejected = api.put(f"/v2/images/{ids['shared']}/members/{OTHER}", json={"status": "rejected"})
    assert rejected.status_code == 200, rejected.text
    assert api.post(f"/v2/images/{ids['deactivated']}/actions/deactivate").status_code == 204
    assert api.delete(f"/v2/images/{ids['deleted']}").status_code == 204
    # A property set, then removed, and a tag removed: Glance keeps deleted rows that must not come back.
    change = [{"op": "add", "path": "/scratch", "value": "x"}]
    assert api.patch(f"/v2/images/{ids['public']}", json=change, headers=PATCH).status_code == 200
    change = [{"op": "remove", "path": "/scratch"}]
    assert api.patch(f"/v2/images/{ids['public']}", json=change, headers=PATCH).status_code == 200
    assert api.delete(f"/v2/images/{ids['community']}/tags/community").status_code == 204
    return ids, data


@pytest.fixture(scope="module", params=["sqlite", "mysql", "postgresql"])
def filled(
    request: pytest.FixtureRequest, glance_venv: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Filled]:
    with ExitStack() as stack:
        workdir = tmp_path_factory.mktemp(f"glance-{request.param}")
        url = None if request.param == "sqlite" else stack.enter_context(fresh_database(request.param))
        glance = GlanceServer(workdir, workers=1, threads=4, venv=glance_venv, database_url=url)
        glance.start()
        stack.callback(glance.stop)
        ids, data = _fill(glance)
        yield Filled(glance, glance.database_url, workdir / "images", ids, data)


@pytest.fixture(scope="module")
def glimpse(filled: Filled, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    """A fresh Glimpse (same kind of database as Glance's) whose file store is Glance's image folder."""
    with ExitStack() as stack:
        workdir = tmp_path_factory.mktemp("glimpse")
        kind = filled.database_url.split(":", 1)[0].split("+", 1)[0]
        url = None if kind == "sqlite" else stack.enter_context(fresh_database(kind))
        srv = GlimpseServer(workdir, url, extra_conf=f"[glance_store]\nfilesystem_store_datadir = {filled.images_dir}")
        if url is not None:
            sync = srv.command("db", "sync")
            assert sync.returncode == 0, sync.stderr
        yield srv
        srv.stop()


def _import(srv: GlimpseServer, filled: Filled, *extra: str) -> subprocess.CompletedProcess[str]:
    return srv.command("db", "import-glance", "--from", filled.database_url, *extra)


def _listed(client: httpx.Client, query: str) -> set[str]:
    response = client.get(f"/v2/images?limit=100{query}")
    assert response.status_code == 200, response.text
    return {i["id"] for i in response.json()["images"]}


def test_import_serves_what_glance_served(filled: Filled, glimpse: GlimpseServer) -> None:
    ids = filled.ids
    dry = _import(glimpse, filled, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "would be created" in dry.stdout and ids["public"] in dry.stdout
    first = _import(glimpse, filled)
    assert first.returncode == 0, first.stdout + first.stderr
    assert _count(first.stdout, "created") == len(ids)
    assert _count(first.stdout, "of which deleted") == 1

    glimpse.start()
    glance = httpx.Client(base_url=filled.glance.url, timeout=60)
    ours = httpx.Client(base_url=glimpse.url, timeout=60)
    # The dry run wrote nothing, the import everything: every live image reads the same on both servers.
    for key, image_id in ids.items():
        if key == "deleted":
            continue
        theirs, mine = glance.get(f"/v2/images/{image_id}").json(), ours.get(f"/v2/images/{image_id}").json()
        for name in FIELDS:
            value = sorted(mine[name]) if name == "tags" else mine[name]
            expected = sorted(theirs[name]) if name == "tags" else theirs[name]
            assert value == expected, (key, name)
        extra = {k: v for k, v in theirs.items() if k not in FIELDS and not k.startswith(("os_glance", "stores"))}
        for name in ("os_distro", "os_version", "hw_disk_bus", "architecture"):
            if name in extra:
                assert mine[name] == extra[name], (key, name)
        assert "scratch" not in mine
    assert ours.get(f"/v2/images/{ids['public']}").json()["os_distro"] == "debian"
    assert ours.get(f"/v2/images/{ids['community']}").json()["tags"] == []

    # The lists agree (the default one, and with hidden images).
    for query in ("", "&os_hidden=true", "&visibility=community", "&visibility=shared&member_status=all"):
        assert _listed(ours, query) == _listed(glance, query), query

    # Members with their status, and as a member sees the image.
    members = ours.get(f"/v2/images/{ids['shared']}/members").json()["members"]
    assert {(m["member_id"], m["status"]) for m in members} == {(FRIEND, "accepted"), (OTHER, "rejected")}
    friend = {"X-Project-Id": FRIEND, "X-Roles": "member"}
    assert ids["shared"] in {i["id"] for i in ours.get("/v2/images", headers=friend).json()["images"]}

    # The data downloads with the checksums Glance computed; a deactivated image is not downloadable.
    for key, data in filled.data.items():
        if key in ("deleted", "deactivated"):
            continue
        body = ours.get(f"/v2/images/{ids[key]}/file")
        assert body.status_code == 200, (key, body.text)
        assert body.content == data
        record = glance.get(f"/v2/images/{ids[key]}").json()
        assert hashlib.md5(body.content).hexdigest() == record["checksum"]
        assert hashlib.sha512(body.content).hexdigest() == record["os_hash_value"]
    # Deactivated: an admin still downloads it on both servers; its owner may not.
    deactivated = f"/v2/images/{ids['deactivated']}/file"
    assert ours.get(deactivated).status_code == glance.get(deactivated).status_code == 200
    assert ours.get(deactivated, headers={"X-Project-Id": OWNER, "X-Roles": "member"}).status_code == 403
    assert ours.get(f"/v2/images/{ids['queued']}/file").status_code == 204
    assert ours.delete(f"/v2/images/{ids['protected']}").status_code == 403

    # A deleted Glance image is a tombstone: gone, and its id is never given out again.
    assert ours.get(f"/v2/images/{ids['deleted']}").status_code == 404
    reuse = ours.post("/v2/images", json={"id": ids["deleted"], "name": "again"})
    assert reuse.status_code == 409, reuse.text

    # Run again, nothing changes; with --verify every copy is read back and matches.
    again = _import(glimpse, filled, "--verify")
    assert again.returncode == 0, again.stdout + again.stderr
    assert _count(again.stdout, "unchanged") == len(ids)
    assert _count(again.stdout, "created") == 0 and _count(again.stdout, "updated") == 0
    assert "Verified 5 copies of 5 image(s): 0 image(s)" in again.stdout

    # What changes in Glance afterwards is brought over by the next run, and only that.
    change = [{"op": "add", "path": "/os_version", "value": "13.1"}]
    assert glance.patch(f"/v2/images/{ids['public']}", json=change, headers=PATCH).status_code == 200
    assert glance.delete(f"/v2/images/{ids['queued']}").status_code == 204
    update = _import(glimpse, filled)
    assert update.returncode == 0, update.stdout + update.stderr
    assert _count(update.stdout, "updated") == 2 and _count(update.stdout, "unchanged") == len(ids) - 2
    assert ours.get(f"/v2/images/{ids['public']}").json()["os_version"] == "13.1"
    assert ours.get(f"/v2/images/{ids['queued']}").status_code == 404

    # Two live member rows for one member (Glance's unique key includes deleted_at, NULL in both): the one
    # updated last wins, and the import goes on.
    _add_live_member_row(filled.database_url, ids["shared"], FRIEND, "pending")
    twice = _import(glimpse, filled)
    assert twice.returncode == 0, twice.stdout + twice.stderr
    assert _count(twice.stdout, "updated") == 1
    members = ours.get(f"/v2/images/{ids['shared']}/members").json()["members"]
    assert {(m["member_id"], m["status"]) for m in members} == {(FRIEND, "pending"), (OTHER, "rejected")}

    # Data missing from the store is reported by --verify, naming the image, with a non-zero exit.
    (filled.images_dir / ids["community"]).unlink()
    broken = _import(glimpse, filled, "--verify", "--sample", "5")
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert f"missing image {ids['community']}" in broken.stdout.replace("\n", " ")


def _add_live_member_row(database_url: str, image_id: str, member: str, status: str) -> None:
    engine = create_engine(database_url)
    try:
        members = Table("image_members", MetaData(), autoload_with=engine)
        later = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1)
        with engine.begin() as conn:
            conn.execute(
                members.insert().values(
                    image_id=image_id, member=member, can_share=False, status=status, created_at=later,
                    updated_at=later, deleted=False, deleted_at=None,
                )
            )  # fmt: skip
    finally:
        engine.dispose()


def _count(output: str, label: str) -> int:
    """The number on the summary table's row whose label contains `label`."""
    for line in output.splitlines():
        cells = [c.strip() for c in line.replace("│", "|").split("|") if c.strip()]
        if len(cells) == 2 and label in cells[0] and cells[1].isdigit():
            return int(cells[1])
    raise AssertionError(f"no '{label}' row in:\n{output}")


def test_unknown_schema_is_refused(tmp_path: Path) -> None:
    srv = GlimpseServer(tmp_path / "glimpse")
    empty = tmp_path / "empty.sqlite"
    with sqlite3.connect(empty) as conn:
        conn.execute("CREATE TABLE images (id TEXT)")
    result = srv.command("db", "import-glance", "--from", f"sqlite:///{empty}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is not a Glance database Glimpse knows: no table image_properties" in result.stderr

    # Glimpse's own database has Glance's table names, but not its schema revision.
    assert srv.command("db", "sync").returncode == 0
    own = srv.data_dir / "glimpse.db"
    result = srv.command("db", "import-glance", "--from", f"sqlite:///{own}")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "which Glimpse does not know" in result.stderr

    result = srv.command("db", "import-glance", "--from", "not a url")
    assert result.returncode == 2 and "is not a database URL" in result.stderr
