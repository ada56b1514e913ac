"""The audit log end to end: the real `openstack` client behind a real Keystone, the API on every database, a row
for every change in an image's life, and 403 for whoever is no administrator."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.server import GlimpseServer
from tests.keystone.server import KeystoneServer
from tests.keystone.setup import authtoken_conf, issue_token, openstack_env, register_image_service

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
OWNER = {"X-Project-Id": "audit-owner", "X-User-Id": "olivia", "X-Roles": "member,reader"}
MEMBER = {"X-Project-Id": "audit-member", "X-User-Id": "mo", "X-Roles": "member,reader"}


@pytest.fixture(scope="module")
def glimpse_ks(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GlimpseServer]:
    conf = "[paste_deploy]\nflavor = keystone\n" + authtoken_conf(keystone_server)
    server = GlimpseServer(tmp_path_factory.mktemp("glimpse-audit-ks"), extra_conf=conf).start()
    register_image_service(keystone_server, server.url)
    yield server
    server.stop()


def _token(ks: KeystoneServer, projects: dict[str, Any], user: str) -> str:
    info = projects["users"][user]
    token, _ = issue_token(ks.url, user, info["password"], info["project"])
    return token


def _log(url: str, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    """Every entry matching params, oldest first, following the `next` links."""
    found: list[dict[str, Any]] = []
    link: str | None = "/v2/audit"
    query: dict[str, str] | None = {"sort_dir": "asc", "limit": "3", **params}
    while link:
        response = httpx.get(url + link, params=query, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["audit"]
        link, query = body.get("next"), None
    return found


def test_who_changed_what_through_the_openstack_client(
    glimpse_ks: GlimpseServer, keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    users = keystone_projects["users"]

    def as_user(user: str) -> Clients:
        info = users[user]
        return Clients(glimpse_ks.url, tmp_path / user, openstack_env(keystone_server, user, info["project"],
                                                                       info["password"]))  # fmt: skip

    owner, member = as_user("Prj1-member"), as_user("Prj2-member")
    source = tmp_path / "disk.img"
    source.write_bytes(raw_disk_bytes(64 * 1024))
    image = owner.openstack_json(
        "image", "create", "--disk-format", "raw", "--container-format", "bare", "--shared", "--file", str(source),
        "--property", "os_family=ubuntu", f"audit-{uuid.uuid4().hex[:6]}",
    )  # fmt: skip
    image_id = image["id"]
    owner.openstack("image", "set", "--name", "renamed", "--property", "os_version=24.04", image_id)
    owner.openstack("image", "add", "project", image_id, keystone_projects["projects"]["Prj2"])
    member.openstack("image", "set", "--accept", image_id)
    owner.openstack("image", "set", "--deactivate", image_id)
    owner.openstack("image", "set", "--activate", image_id)
    owner.openstack("image", "delete", image_id)

    admin = {"X-Auth-Token": _token(keystone_server, keystone_projects, "Prj1-admin")}
    log = _log(glimpse_ks.url, admin, target_id=image_id)
    actions = [e["action"] for e in log]
    assert actions == [
        "image.create", "image.upload", "image.update", "image.member.create", "image.member.update",
        "image.deactivate", "image.reactivate", "image.delete",
    ]  # fmt: skip
    by_action = {e["action"]: e for e in log}
    owner_id, member_id = users["Prj1-member"]["id"], users["Prj2-member"]["id"]
    for action in set(actions) - {"image.member.update"}:
        assert by_action[action]["user_id"] == owner_id
        assert by_action[action]["project_id"] == keystone_projects["projects"]["Prj1"]
        assert "member" in by_action[action]["roles"]
        assert by_action[action]["request_id"].startswith("req-")
    accepted = by_action["image.member.update"]
    assert (accepted["user_id"], accepted["project_id"]) == (member_id, keystone_projects["projects"]["Prj2"])
    assert accepted["changes"]["status"] == ["pending", "accepted"]
    assert by_action["image.update"]["changes"] == {"name": [image["name"], "renamed"], "os_version": [None, "24.04"]}
    assert by_action["image.create"]["changes"]["os_family"] == [None, "ubuntu"]
    assert by_action["image.upload"]["changes"]["size"] == [None, 64 * 1024]
    assert by_action["image.delete"]["changes"]["status"] == ["active", "deleted"]
    assert len({e["request_id"] for e in log}) == len(log)  # one request each
    assert {e["target_project"] for e in log} == {keystone_projects["projects"]["Prj1"]}
    assert [e["action"] for e in _log(glimpse_ks.url, admin, user=member_id, target_id=image_id)] == [
        "image.member.update"
    ]


def test_only_administrators_read_the_audit_log(
    glimpse_ks: GlimpseServer, keystone_server: KeystoneServer, keystone_projects: dict[str, Any]
) -> None:
    for user in ("Prj1-member", "Prj1-reader", "Prj2-member"):
        token = _token(keystone_server, keystone_projects, user)
        response = httpx.get(f"{glimpse_ks.url}/v2/audit", headers={"X-Auth-Token": token}, timeout=30)
        assert response.status_code == 403, (user, response.text)
        assert "get_audit" in response.text
    assert httpx.get(f"{glimpse_ks.url}/v2/audit", timeout=30).status_code == 401
    admin = _token(keystone_server, keystone_projects, "Prj1-admin")
    assert httpx.get(f"{glimpse_ks.url}/v2/audit", headers={"X-Auth-Token": admin}, timeout=30).status_code == 200


def _wait_status(url: str, image_id: str, status: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/v2/images/{image_id}", headers=OWNER, timeout=30).json()["status"] == status:
            return
        time.sleep(0.2)
    raise AssertionError(f"image {image_id} never became {status}")


def test_every_change_in_an_images_life_has_its_row(server: GlimpseServer) -> None:
    """On SQLite, MariaDB and PostgreSQL: create, update, stage, import, tags, members, (de)activation, delete."""
    url = server.url

    def call(method: str, path: str, expected: int, headers: dict[str, str] = OWNER, **kw: Any) -> httpx.Response:
        response = httpx.request(method, url + path, headers={**headers, **kw.pop("extra", {})}, timeout=30, **kw)
        assert response.status_code == expected, response.text
        return response

    body = {"name": "life", "disk_format": "raw", "container_format": "bare", "visibility": "shared"}
    image_id = call("POST", "/v2/images", 201, json=body).json()["id"]
    patch = [{"op": "add", "path": "/os_family", "value": "debian"}, {"op": "replace", "path": "/min_ram", "value": 64}]
    call("PATCH", f"/v2/images/{image_id}", 200, json=patch, extra=PATCH)
    call("PUT", f"/v2/images/{image_id}/stage", 204, content=b"x" * 4096,
         extra={"Content-Type": "application/octet-stream"})  # fmt: skip
    call("POST", f"/v2/images/{image_id}/import", 202, json={"method": {"name": "glance-direct"}})
    _wait_status(url, image_id, "active")
    call("PUT", f"/v2/images/{image_id}/tags/golden", 204)
    call("DELETE", f"/v2/images/{image_id}/tags/golden", 204)
    call("POST", f"/v2/images/{image_id}/members", 200, json={"member": MEMBER["X-Project-Id"]})
    call("PUT", f"/v2/images/{image_id}/members/{MEMBER['X-Project-Id']}", 200, headers=MEMBER,
         json={"status": "rejected"})  # fmt: skip
    call("DELETE", f"/v2/images/{image_id}/members/{MEMBER['X-Project-Id']}", 204)
    call("POST", f"/v2/images/{image_id}/actions/deactivate", 204)
    call("POST", f"/v2/images/{image_id}/actions/reactivate", 204)
    call("DELETE", f"/v2/images/{image_id}", 204)
    refused = [  # what changed nothing has no row
        call("DELETE", f"/v2/images/{image_id}", 404),
        call("PUT", f"/v2/images/{image_id}/tags/late", 404),
    ]
    assert refused

    admin = {"X-Roles": "admin"}
    log = _log(url, admin, target_id=image_id)
    assert [e["action"] for e in log] == [
        "image.create", "image.update", "image.stage", "image.import", "image.import.finish", "image.tag.add",
        "image.tag.remove",
        "image.member.create", "image.member.update", "image.member.delete", "image.deactivate",
        "image.reactivate", "image.delete",
    ]  # fmt: skip
    assert all(e["user_id"] == OWNER["X-User-Id"] for e in log if e["action"] != "image.member.update")
    entries = {e["action"]: e for e in log}
    assert entries["image.update"]["changes"] == {"min_ram": [0, 64], "os_family": [None, "debian"]}
    assert entries["image.import"]["changes"]["method"][1] == {"name": "glance-direct"}
    finished = entries["image.import.finish"]
    assert finished["changes"]["status"] == ["importing", "active"]
    assert finished["request_id"] == entries["image.import"]["request_id"]  # done for the request that asked
    assert entries["image.member.update"]["user_id"] == MEMBER["X-User-Id"]
    assert entries["image.member.update"]["changes"]["status"] == ["pending", "rejected"]
    newest = httpx.get(f"{url}/v2/audit", params={"target_id": image_id, "limit": "1"}, headers=admin, timeout=30)
    assert newest.json()["audit"][0]["action"] == "image.delete"
    assert "marker=" in newest.json()["next"]


def test_bad_audit_queries_are_400_and_no_row_can_be_changed(server: GlimpseServer) -> None:
    admin = {"X-Roles": "admin"}
    for params in ({"colour": "red"}, {"limit": "-1"}, {"marker": "abc"}, {"marker": "99999999"},
                   {"since": "yesterday"}, {"sort_dir": "sideways"}):  # fmt: skip
        response = httpx.get(f"{server.url}/v2/audit", params=params, headers=admin, timeout=30)
        assert response.status_code == 400, (params, response.text)
    for method in ("POST", "PUT", "PATCH", "DELETE"):  # append-only: no API changes a row
        assert httpx.request(method, f"{server.url}/v2/audit", headers=admin, timeout=30).status_code == 405
