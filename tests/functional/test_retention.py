"""Retention policies end to end: three nodes over one PostgreSQL run them on a schedule and exactly one acts, the
result is exactly the policy's, every deletion is in the audit log with the policy as actor; a dry run changes
nothing; `glimpse retention` and the API manage the policies."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.functional.databases import fresh_database
from tests.functional.server import GlimpseServer

ADMIN = {"X-Roles": "admin"}
OCTETS = {"Content-Type": "application/octet-stream"}


def _image(url: str, project: str, family: str, **extra: Any) -> str:
    headers = {"X-Project-Id": project, "X-User-Id": "builder", "X-Roles": "member,reader"}
    body = {"name": f"{family}-{uuid.uuid4().hex[:6]}", "disk_format": "raw", "container_format": "bare",
            "os_family": family, **extra}  # fmt: skip
    response = httpx.post(f"{url}/v2/images", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    image_id = str(response.json()["id"])
    put = httpx.put(f"{url}/v2/images/{image_id}/file", content=b"data", headers={**headers, **OCTETS}, timeout=30)
    assert put.status_code == 204, put.text
    return image_id


def _fleet(url: str, project: str, family: str) -> dict[str, str]:
    """Seven images of one family, oldest first: what keep_newest=2 must delete and what it must keep."""
    made: dict[str, str] = {}
    made["oldest"] = _image(url, project, family)
    made["protected"] = _image(url, project, family, protected=True)
    made["base"] = _image(url, project, family)
    made["shared"] = _image(url, project, family, visibility="shared")
    made["older"] = _image(url, project, family)
    made["newer"] = _image(url, project, family)
    made["newest"] = _image(url, project, family)
    owner = {"X-Project-Id": project, "X-Roles": "member,reader"}
    # A snapshot built from "base" (another family: the policy does not cover it) keeps it in use.
    _image(url, project, f"{family}-snapshots", base_image_ref=made["base"])
    member = httpx.post(f"{url}/v2/images/{made['shared']}/members", json={"member": "consumer"}, headers=owner)
    assert member.status_code == 200, member.text
    accept = httpx.put(
        f"{url}/v2/images/{made['shared']}/members/consumer", json={"status": "accepted"},
        headers={"X-Project-Id": "consumer", "X-Roles": "member,reader"},
    )  # fmt: skip
    assert accept.status_code == 200, accept.text
    # Another project's image of the same family: a project policy does not reach it.
    made["elsewhere"] = _image(url, f"{project}-other", family)
    return made


def _alive(url: str, image_id: str) -> bool:
    response = httpx.get(f"{url}/v2/images/{image_id}", headers=ADMIN, timeout=30)
    assert response.status_code in (200, 404), response.text
    return response.status_code == 200


def _deletions(url: str, policy_id: str) -> list[dict[str, Any]]:
    params = {"user": f"retention-policy:{policy_id}", "action": "image.delete", "limit": "1000"}
    response = httpx.get(f"{url}/v2/audit", params=params, headers=ADMIN, timeout=30)
    assert response.status_code == 200, response.text
    return list(response.json()["audit"])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[GlimpseServer], str]]:
    root = tmp_path_factory.mktemp("retention-cluster")
    with fresh_database("postgresql") as url:
        conf = f"[glance_store]\nfilesystem_store_datadir = {root / 'images'}\n[retention]\nrun_interval = 1\n"
        nodes = [GlimpseServer(root / f"node{i}", url, extra_conf=conf) for i in range(3)]
        assert nodes[0].command("db", "sync").returncode == 0
        for node in nodes:
            node.start()
        try:
            yield nodes, url
        finally:
            for node in nodes:
                node.stop()


def test_three_nodes_run_a_policy_once_and_exactly(cluster: tuple[list[GlimpseServer], str]) -> None:
    nodes, _ = cluster
    project, family = f"fleet-{uuid.uuid4().hex[:6]}", f"distro-{uuid.uuid4().hex[:6]}"
    made = _fleet(nodes[0].url, project, family)
    created = httpx.post(
        f"{nodes[1].url}/v2/retention/policies",
        json={"project_id": project, "os_family": family, "keep_newest": 2}, headers=ADMIN, timeout=30,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    policy_id = created.json()["id"]
    doomed = {made["oldest"], made["older"]}
    deadline = time.monotonic() + 60
    while any(_alive(nodes[2].url, i) for i in doomed) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # a few more turns of every node's schedule: nothing more may go
    alive = {name for name, image_id in made.items() if _alive(nodes[0].url, image_id)}
    assert alive == {"protected", "base", "shared", "newer", "newest", "elsewhere"}
    rows = _deletions(nodes[2].url, policy_id)
    assert sorted(r["target_id"] for r in rows) == sorted(doomed)  # each deletion once
    assert {r["policy_id"] for r in rows} == {policy_id}
    assert len({r["request_id"] for r in rows}) == 1  # one run of one node made them
    deleted_lines = [
        line
        for node in nodes
        for line in node.log.read_text().splitlines()
        if re.search(f"Retention policy {policy_id} deleted image", line)
    ]
    assert len(deleted_lines) == 2, deleted_lines
    assert len({line.split()[2] for line in deleted_lines}) == 1  # the same process (pid) deleted both


def test_dry_run_changes_nothing_then_the_command_deletes_exactly(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path / "one").start()
    try:
        project, family = "dry", "fedora"
        made = _fleet(server.url, project, family)
        created = server.command("retention", "create", "--project", project, "--family", family, "--keep-newest", "2")
        assert created.returncode == 0, created.stderr
        policy_id = re.search(r"policy (\S+)\.", created.stdout)
        assert policy_id is not None, created.stdout
        listed = server.command("retention", "list")
        assert policy_id.group(1)[:8] in listed.stdout

        dry = server.command("retention", "run", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        would = set(re.findall(r"would delete (\S+)", dry.stdout))
        assert would == {made["oldest"], made["older"]}
        assert re.search(rf"keep {made['protected']} .*: protected", dry.stdout)
        assert re.search(rf"keep {made['base']} .*: in use: base_image_ref of image", dry.stdout)
        assert re.search(rf"keep {made['shared']} .*: in use: accepted by member consumer", dry.stdout)
        api_dry = httpx.post(f"{server.url}/v2/retention/run", json={"dry_run": True}, headers=ADMIN, timeout=30)
        assert api_dry.status_code == 200, api_dry.text
        assert {d["image_id"] for d in api_dry.json()["decisions"] if d["delete"]} == would
        assert all(_alive(server.url, image_id) for image_id in made.values())
        assert _deletions(server.url, policy_id.group(1)) == []

        real = server.command("retention", "run")
        assert real.returncode == 0, real.stderr
        assert "Deleted 2 image(s)." in real.stdout
        assert {name for name, i in made.items() if not _alive(server.url, i)} == {"oldest", "older"}
        rows = _deletions(server.url, policy_id.group(1))
        assert sorted(r["target_id"] for r in rows) == sorted(would)

        deleted = server.command("retention", "delete", policy_id.group(1))
        assert deleted.returncode == 0, deleted.stderr
        again = server.command("retention", "delete", policy_id.group(1))
        assert again.returncode == 1 and "No retention policy" in again.stderr
        audit = httpx.get(
            f"{server.url}/v2/audit", params={"target_id": policy_id.group(1), "sort_dir": "asc"}, headers=ADMIN
        ).json()["audit"]
        assert [e["action"] for e in audit] == ["retention_policy.create", "retention_policy.delete"]
        assert audit[0]["user_id"] == "glimpse-cli"

        listed_log = server.command("audit", "list", "--json", "--action", "retention_policy.delete")
        assert listed_log.returncode == 0, listed_log.stderr
        assert policy_id.group(1) in listed_log.stdout
        assert server.command("audit", "purge").returncode == 2  # no age given, none configured
        purged = server.command("audit", "purge", "--age-in-days", "1")
        assert purged.returncode == 0 and "Purged 0 audit row(s)" in purged.stdout  # everything is younger
        newest = httpx.get(f"{server.url}/v2/audit", params={"limit": "1"}, headers=ADMIN).json()["audit"][0]
        assert (newest["action"], newest["changes"]["removed"]) == ("audit.purge", [None, 0])
    finally:
        server.stop()


def test_policies_through_the_api_and_who_may_manage_them(sqlite_server: GlimpseServer) -> None:
    url = f"{sqlite_server.url}/v2/retention/policies"
    manager = {"X-Project-Id": "team", "X-User-Id": "mgr", "X-Roles": "manager,member,reader"}
    member = {"X-Project-Id": "team", "X-User-Id": "mem", "X-Roles": "member,reader"}
    assert httpx.post(url, json={"project_id": "team", "keep_newest": 3}, headers=member).status_code == 403
    assert httpx.post(url, json={"project_id": "other", "keep_newest": 3}, headers=manager).status_code == 403
    assert httpx.post(url, json={"os_family": "ubuntu", "keep_newest": 3}, headers=manager).status_code == 403
    own = httpx.post(url, json={"project_id": "team", "max_age_days": 30}, headers=manager)
    assert own.status_code == 201, own.text
    family = httpx.post(url, json={"os_family": "ubuntu", "keep_newest": 3}, headers=ADMIN)
    assert family.status_code == 201, family.text
    seen = {p["id"] for p in httpx.get(url, headers=manager).json()["policies"]}
    assert own.json()["id"] in seen and family.json()["id"] not in seen
    assert httpx.get(f"{url}/{family.json()['id']}", headers=manager).status_code == 404
    assert httpx.delete(f"{url}/{family.json()['id']}", headers=manager).status_code == 404
    for bad in ({"project_id": "team"}, {"keep_newest": 2}, {"project_id": "team", "keep_newest": -1}, []):
        response = httpx.post(url, json=bad, headers=ADMIN)
        assert response.status_code == 400, (bad, response.text)
    assert httpx.post(f"{sqlite_server.url}/v2/retention/run", json={}, headers=manager).status_code == 403
    assert httpx.delete(f"{url}/{own.json()['id']}", headers=manager).status_code == 204
    assert httpx.delete(f"{url}/{family.json()['id']}", headers=ADMIN).status_code == 204


def test_a_lease_held_by_a_dead_node_blocks_every_node_until_it_expires(
    cluster: tuple[list[GlimpseServer], str],
) -> None:
    """A node killed -9 in the middle of a run leaves its lease: nobody acts until it expires, then one node does."""
    nodes, url = cluster
    engine = create_engine(url)
    try:
        dead = {"t": datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=5)}
        with engine.begin() as conn:  # every node's schedule has made the row by now; a dead node holds it
            taken = conn.execute(
                text("UPDATE leases SET holder = 'dead:1', generation = 99, expires_at = :t WHERE name = 'retention'"),
                dead,
            )
            assert taken.rowcount == 1
        project, family = f"stalled-{uuid.uuid4().hex[:6]}", "alpine"
        made = _fleet(nodes[0].url, project, family)
        policy = httpx.post(
            f"{nodes[0].url}/v2/retention/policies", json={"project_id": project, "keep_newest": 2}, headers=ADMIN
        )
        assert policy.status_code == 201, policy.text
        refused = httpx.post(f"{nodes[1].url}/v2/retention/run", json={}, headers=ADMIN, timeout=30)
        assert refused.status_code == 200 and refused.json()["acted"] is False
        time.sleep(4)  # every node's schedule came round several times
        assert all(_alive(nodes[2].url, image_id) for image_id in made.values())

        with engine.begin() as conn:  # the dead node's lease runs out
            conn.execute(text("UPDATE leases SET expires_at = :t"), {"t": datetime(2000, 1, 1)})
        # keep_newest=2 over the whole project: its snapshot (the newest image) and "newest" stay, "newer" goes too.
        doomed = {made["oldest"], made["older"], made["newer"]}
        deadline = time.monotonic() + 60
        while any(_alive(nodes[0].url, i) for i in doomed) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)
        gone = {name for name, image_id in made.items() if not _alive(nodes[0].url, image_id)}
        assert gone == {"oldest", "older", "newer"}
        rows = _deletions(nodes[1].url, policy.json()["id"])
        assert sorted(r["target_id"] for r in rows) == sorted(doomed)  # each once
        assert len({r["request_id"] for r in rows}) == 1
        with engine.begin() as conn:
            generation = conn.execute(text("SELECT generation FROM leases WHERE name = 'retention'")).scalar_one()
        assert generation > 99  # taken over, fenced anew
    finally:
        engine.dispose()
