"""A fleet's month compressed into minutes, against real servers: weekly builds in a family, old ones deprecated then
obsoleted on schedule (times a few seconds ahead) with the real openstack client, an image deleted by mistake and
restored with its members, the recycle bin's expiry removing the data (file store on SQLite; one S3 store shared by
two nodes on PostgreSQL), quotas counting binned data, and the hostile cases (another project, a purged image, two
nodes restoring and purging at once)."""

from __future__ import annotations

import subprocess
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.contract.fixtures import s3_server  # noqa: F401  (a real S3-compatible server)
from tests.contract.servers import S3Server
from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.databases import fresh_database
from tests.functional.server import GLIMPSE, GlimpseServer
from tests.functional.test_scale_out import node_conf
from tests.functional.waiting import until

OCTETS = {"Content-Type": "application/octet-stream"}
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
BIN = "[recycle_bin]\nretention_period = 3600\n"


def _member(project: str, roles: str = "member,reader") -> dict[str, str]:
    return {"X-Project-Id": project, "X-Roles": roles}


def _project() -> str:
    return f"prj-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    server = GlimpseServer(tmp_path_factory.mktemp("lifecycle"), extra_conf=BIN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cluster(
    s3_server: S3Server,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[list[GlimpseServer], S3Server, str]]:
    bucket = f"bin-{uuid.uuid4().hex[:10]}"
    root = tmp_path_factory.mktemp("bin-cluster")
    with fresh_database("postgresql") as url:
        conf = node_conf(s3_server, bucket, root / "staging") + BIN
        nodes = [GlimpseServer(root / f"node{i}", url, extra_conf=conf) for i in range(2)]
        assert nodes[0].command("db", "sync").returncode == 0
        for one in nodes:
            one.start()
        try:
            yield nodes, s3_server, bucket
        finally:
            for one in nodes:
                one.stop()


def _upload(url: str, headers: dict[str, str], data: bytes, **props: Any) -> str:
    body = {"disk_format": "raw", "container_format": "bare", **props}
    created = httpx.post(f"{url}/v2/images", json=body, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    put = httpx.put(f"{url}/v2/images/{image_id}/file", content=data, headers={**headers, **OCTETS}, timeout=60)
    assert put.status_code == 204, put.text
    return image_id


def _at(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _latest(url: str, family: str, headers: dict[str, str]) -> str | None:
    found = httpx.get(f"{url}/v2/families/{family}/latest", headers=headers)
    return str(found.json()["id"]) if found.status_code == 200 else None


def _state(url: str, image_id: str) -> str | None:
    shown: str | None = httpx.get(f"{url}/v2/images/{image_id}").json().get("deprecation_status")
    return shown


def _properties(clients: Clients, image_id: str) -> dict[str, str]:
    shown: dict[str, str] = clients.openstack_json("image", "show", image_id)["properties"]
    return shown


def test_a_fleets_month(node: GlimpseServer, tmp_path: Path) -> None:
    clients = Clients(node.url, tmp_path / "home")
    family = f"debian-{uuid.uuid4().hex[:6]}"
    tenant = _member(_project())  # a project booting the fleet's public images
    disk = tmp_path / "disk.raw"
    builds: list[str] = []

    def build(week: int) -> str:
        disk.write_bytes(raw_disk_bytes(50_000))
        image_id: str = clients.openstack_json(
            "image", "create", "--file", str(disk), "--disk-format", "raw", "--container-format", "bare",
            "--public", "--property", f"os_family={family}", f"{family}-week{week}",
        )["id"]  # fmt: skip
        builds.append(image_id)
        return image_id

    # Week 1: the first build is the family's latest, for the tenant too.
    week1 = build(1)
    assert _latest(node.url, family, tenant) == week1
    # Week 2: a new build; the old one is scheduled deprecated in 8 s and obsolete in 45 s, pointing at its successor
    # (seconds that leave the client, a few seconds a call, time to look before each happens).
    week2 = build(2)
    assert _latest(node.url, family, tenant) == week2
    clients.openstack("image", "set", "--property", f"deprecate_at={_at(8)}", "--property", f"obsolete_at={_at(45)}",
                      "--property", f"replacement_image={week2}", week1)  # fmt: skip
    assert _state(node.url, week1) == "active"
    until(lambda: _state(node.url, week1) == "deprecated", "week 1 never got deprecated", timeout=20)
    assert httpx.get(f"{node.url}/v2/images/{week1}/file", headers=tenant).status_code == 200  # still boots
    assert _properties(clients, week1)["deprecation_status"] == "deprecated"
    # Deprecated images still boot, but a list can leave them out (the server-side filter glance's client sends;
    # openstack image list --property filters on the client side).
    listed = clients.glance("image-list", "--property-filter", f"os_family={family}", "--property-filter",
                            "deprecation_status=active").stdout  # fmt: skip
    assert week2 in listed and week1 not in listed, listed
    until(lambda: _state(node.url, week1) == "obsolete", "week 1 never became obsolete", timeout=70)
    assert _properties(clients, week1)["deprecation_status"] == "obsolete"
    refused = httpx.get(f"{node.url}/v2/images/{week1}/file", headers={**tenant, "Accept": "application/json"})
    assert refused.status_code == 403 and week2 in refused.json()["message"], refused.text
    saved = tmp_path / "saved.raw"  # the administrator still reads it (the openstack client here is one)
    clients.openstack("image", "save", "--file", str(saved), week1)
    assert saved.stat().st_size == 50_000

    # Week 3: a bad build, deprecated at once with the openstack client: the latest falls back to week 2.
    week3 = build(3)
    assert _latest(node.url, family, tenant) == week3
    clients.openstack("image", "set", "--property", "deprecation_status=deprecated", "--property",
                      f"replacement_image={week2}", week3)  # fmt: skip
    assert _latest(node.url, family, tenant) == week2
    # Week 4: the next good build; the glimpse command agrees with the API.
    week4 = build(4)
    assert _latest(node.url, family, tenant) == week4
    printed = node.command("image", "latest", family, "--project", tenant["X-Project-Id"])
    assert printed.returncode == 0 and week4 in printed.stdout, printed.stdout + printed.stderr
    families = httpx.get(f"{node.url}/v2/families", headers=tenant).json()["families"]
    assert {"name": family, "id": week4} in [{"name": f["name"], "id": f["latest"]["id"]} for f in families]
    # Undeprecating week 3 (the glimpse command) makes nothing newer than week 4: the latest stays.
    assert node.command("image", "undeprecate", week3).returncode == 0
    assert "deprecation_status" not in _properties(clients, week3)
    assert _latest(node.url, family, tenant) == week4
    # Bad values are 400 in Glance's format, through the real client too.
    bad = clients.openstack("image", "set", "--property", "obsolete_at=next tuesday", week4, check=False)
    assert bad.returncode != 0 and "400" in bad.stderr + bad.stdout
    worse = clients.glance("image-update", "--property", "deprecate_at=2030-02-30T00:00:00Z", week4, check=False)
    assert worse.returncode != 0 and "ISO 8601" in worse.stderr + worse.stdout, worse.stderr
    ghost = httpx.patch(f"{node.url}/v2/images/{week4}", headers={**PATCH, "Accept": "application/json"},
                        json=[{"op": "add", "path": "/replacement_image", "value": str(uuid.uuid4())}])  # fmt: skip
    assert ghost.status_code == 400 and "does not exist" in ghost.json()["message"]


def test_deleted_by_mistake_and_restored_with_its_members(node: GlimpseServer, tmp_path: Path) -> None:
    clients = Clients(node.url, tmp_path / "home")
    owner, friend = _project(), _project()
    data = raw_disk_bytes(200_000)
    # The owner project uploads it (the keystone-less openstack client cannot name a project), shares it with a
    # friend; an administrator then deletes it by mistake with the openstack client.
    image_id = _upload(node.url, _member(owner), data, name="precious", os_distro="debian", tags=["golden"])
    clients.glance("member-create", image_id, friend)
    assert httpx.put(f"{node.url}/v2/images/{image_id}/members/{friend}", json={"status": "accepted"},
                     headers=_member(friend)).status_code == 200  # fmt: skip

    clients.openstack("image", "delete", image_id)
    shown = clients.openstack("image", "show", image_id, check=False)
    assert shown.returncode != 0 and "No Image found" in shown.stderr + shown.stdout
    assert image_id not in clients.openstack("image", "list", "-f", "value", "-c", "ID").stdout
    assert httpx.get(f"{node.url}/v2/images/{image_id}", headers=_member(friend)).status_code == 404
    binned = httpx.get(f"{node.url}/v2/recycle-bin", headers=_member(owner)).json()["images"]
    assert [(b["id"], b["restores_to"], b["tags"]) for b in binned] == [(image_id, "active", ["golden"])]
    # The other project neither sees it in its bin nor can restore it.
    assert httpx.get(f"{node.url}/v2/recycle-bin", headers=_member(friend)).json()["images"] == []
    assert httpx.post(f"{node.url}/v2/recycle-bin/{image_id}/restore", headers=_member(friend)).status_code == 404
    # The owner's reader may look, not restore.
    assert httpx.get(f"{node.url}/v2/recycle-bin/{image_id}", headers=_member(owner, "reader")).status_code == 200
    assert httpx.post(f"{node.url}/v2/recycle-bin/{image_id}/restore",
                      headers=_member(owner, "reader")).status_code == 403  # fmt: skip

    restored = httpx.post(f"{node.url}/v2/recycle-bin/{image_id}/restore", headers=_member(owner))
    assert restored.status_code == 200 and restored.json()["status"] == "active", restored.text
    image = clients.openstack_json("image", "show", image_id)
    assert (image["status"], image["tags"], image["properties"]["os_distro"]) == ("active", ["golden"], "debian")
    members = clients.glance("member-list", "--image-id", image_id).stdout
    assert friend in members and "accepted" in members, members
    saved = tmp_path / "saved.raw"
    clients.openstack("image", "save", "--file", str(saved), image_id)
    assert saved.read_bytes() == data
    assert httpx.get(f"{node.url}/v2/images/{image_id}/file", headers=_member(friend)).content == data


def _usage(url: str, project: str) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = httpx.get(f"{url}/v2/info/usage", headers=_member(project)).json()["usage"]
    return found


def test_quota_counts_binned_data_and_a_restore_needs_room_for_the_image(node: GlimpseServer) -> None:
    project = _project()
    headers = _member(project)
    limits = httpx.put(f"{node.url}/v2/quotas/{project}", json={"image_size_total": 1, "image_count_total": 1})
    assert limits.status_code == 200, limits.text
    first = _upload(node.url, headers, b"a" * 700_000)
    assert httpx.delete(f"{node.url}/v2/images/{first}", headers=headers).status_code == 204
    usage = _usage(node.url, project)
    assert usage["image_size_total"] == {"limit": 1, "usage": 1, "binned": 1}
    assert usage["image_count_total"] == {"limit": 1, "usage": 0, "binned": 1}
    # The binned bytes still count: a second image of the same size does not fit.
    second = httpx.post(f"{node.url}/v2/images", json={"disk_format": "raw", "container_format": "bare"},
                        headers=headers).json()["id"]  # fmt: skip
    full = httpx.put(f"{node.url}/v2/images/{second}/file", content=b"b" * 700_000, headers={**headers, **OCTETS})
    assert full.status_code == 413
    # Restoring the first into a project whose one image slot is taken is refused; it stays in the bin.
    refused = httpx.post(
        f"{node.url}/v2/recycle-bin/{first}/restore", headers={**headers, "Accept": "application/json"}
    )
    assert refused.status_code == 413 and "limit of 1 images" in refused.json()["message"]
    assert httpx.get(f"{node.url}/v2/recycle-bin/{first}", headers=headers).status_code == 200
    # Purged, its bytes are free at once.
    assert httpx.delete(f"{node.url}/v2/recycle-bin/{first}", headers=headers).status_code == 204
    assert _usage(node.url, project)["image_size_total"] == {"limit": 1, "usage": 0, "binned": 0}
    put = httpx.put(f"{node.url}/v2/images/{second}/file", content=b"b" * 700_000, headers={**headers, **OCTETS})
    assert put.status_code == 204
    gone = httpx.post(f"{node.url}/v2/recycle-bin/{first}/restore", headers=headers)
    assert gone.status_code == 404  # a purged image cannot come back


def _scrub(server: GlimpseServer) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GLIMPSE, "scrub", "--config-file", str(server.conf), "--data-dir", str(server.data_dir)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _in_bin(url: str, image_id: str, project: str) -> bool:
    return httpx.get(f"{url}/v2/recycle-bin/{image_id}", headers=_member(project)).status_code == 200


def test_bin_expiry_removes_the_data_from_the_file_store(node: GlimpseServer) -> None:
    project = _project()
    # Long enough for the upload, the delete and a `glimpse bin list` process on a loaded machine.
    retention = node.command("bin", "retention", project, "--set", "20s")
    assert retention.returncode == 0 and "20 s" in retention.stdout, retention.stdout + retention.stderr
    shown = httpx.get(f"{node.url}/v2/recycle-bin/retention/{project}", headers=_member(project)).json()
    assert shown == {"project_id": project, "retention_period": 20, "source": "project"}
    image_id = _upload(node.url, _member(project), b"e" * 300_000)
    path = node.data_dir / "images" / image_id
    assert httpx.delete(f"{node.url}/v2/images/{image_id}", headers=_member(project)).status_code == 204
    listed = node.command("bin", "list", "--project", project)
    assert listed.returncode == 0 and image_id in listed.stdout
    assert path.exists()
    until(lambda: not _in_bin(node.url, image_id, project), "the bin never let the image go", timeout=40)
    assert path.exists() and _usage(node.url, project)["image_size_total"]["usage"] == 1  # until the scrubber runs
    scrubbed = _scrub(node)
    assert scrubbed.returncode == 0, scrubbed.stdout + scrubbed.stderr
    assert not path.exists()
    assert _usage(node.url, project)["image_size_total"]["usage"] == 0
    assert httpx.post(f"{node.url}/v2/recycle-bin/{image_id}/restore", headers=_member(project)).status_code == 404
    assert node.command("bin", "restore", image_id).returncode == 1


def _objects(s3: S3Server, bucket: str) -> set[str]:
    listed = s3.client().list_objects_v2(Bucket=bucket)
    return {o["Key"] for o in listed.get("Contents", [])}


def test_bin_on_a_shared_s3_store_and_postgresql(cluster: tuple[list[GlimpseServer], S3Server, str]) -> None:
    nodes, s3, bucket = cluster
    project = _project()
    headers = _member(project)
    put = httpx.put(f"{nodes[0].url}/v2/recycle-bin/retention/{project}", json={"retention_period": 3})
    assert put.status_code == 200
    image_id = _upload(nodes[0].url, headers, raw_disk_bytes(300_000))
    assert any(image_id in key for key in _objects(s3, bucket))
    assert httpx.delete(f"{nodes[0].url}/v2/images/{image_id}", headers=headers).status_code == 204
    assert _in_bin(nodes[1].url, image_id, project)  # the other node sees the same bin
    until(lambda: not _in_bin(nodes[1].url, image_id, project), "the bin never let the image go", timeout=20)
    assert any(image_id in key for key in _objects(s3, bucket))
    scrubbed = _scrub(nodes[1])
    assert scrubbed.returncode == 0, scrubbed.stdout + scrubbed.stderr
    assert not any(image_id in key for key in _objects(s3, bucket))


def test_two_nodes_restoring_and_purging_at_once(cluster: tuple[list[GlimpseServer], S3Server, str]) -> None:
    nodes, s3, bucket = cluster
    project = _project()
    headers = _member(project)
    ids = [_upload(nodes[0].url, headers, raw_disk_bytes(20_000)) for _ in range(6)]
    for image_id in ids:
        assert httpx.delete(f"{nodes[0].url}/v2/images/{image_id}", headers=headers).status_code == 204
    outcomes: dict[str, dict[str, int]] = {image_id: {} for image_id in ids}

    def act(verb: str, url: str, image_id: str, start: threading.Barrier) -> None:
        start.wait()
        if verb == "restore":
            response = httpx.post(f"{url}/v2/recycle-bin/{image_id}/restore", headers=headers, timeout=60)
        else:
            response = httpx.delete(f"{url}/v2/recycle-bin/{image_id}", headers=headers, timeout=60)
        outcomes[image_id][verb] = response.status_code

    threads = []
    for image_id in ids:
        start = threading.Barrier(2)
        threads += [threading.Thread(target=act, args=("restore", nodes[0].url, image_id, start)),
                    threading.Thread(target=act, args=("purge", nodes[1].url, image_id, start))]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    keys = _objects(s3, bucket)
    for image_id, got in outcomes.items():
        shown = httpx.get(f"{nodes[1].url}/v2/images/{image_id}", headers=headers)
        if got["restore"] == 200:  # the restore won: the purge found nothing in the bin
            assert got["purge"] in (404, 409), got
            assert shown.status_code == 200 and shown.json()["status"] == "active"
            assert httpx.get(f"{nodes[1].url}/v2/images/{image_id}/file", headers=headers).status_code == 200
        else:  # the purge won: the restore found nothing in the bin and the data is gone (or goes at the next scrub)
            assert got == {"restore": 404, "purge": got["purge"]} and got["purge"] in (202, 204), got
            assert shown.status_code == 404 and not _in_bin(nodes[0].url, image_id, project)
            if got["purge"] == 204:
                assert not any(image_id in key for key in keys)
    # A restore of an image already restored, or of one never binned, is 404 too.
    assert httpx.post(f"{nodes[0].url}/v2/recycle-bin/{uuid.uuid4()}/restore", headers=headers).status_code == 404
