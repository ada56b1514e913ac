"""Glimpse behind a real Keystone: the seed's sharing flow with the real clients, 401s, 503s and caching."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.functional.clients import Clients
from tests.functional.server import GlimpseServer, free_port
from tests.keystone.server import KeystoneServer
from tests.keystone.setup import authtoken_conf, openstack_env, register_image_service

KEYSTONE_FLAVOR = "[paste_deploy]\nflavor = keystone\n"


@pytest.fixture(scope="module")
def glimpse_ks(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GlimpseServer]:
    server = GlimpseServer(
        tmp_path_factory.mktemp("glimpse-keystone"), extra_conf=KEYSTONE_FLAVOR + authtoken_conf(keystone_server)
    ).start()
    register_image_service(keystone_server, server.url)
    yield server
    server.stop()


def _cli(ks: KeystoneServer, projects: dict[str, Any], user: str, home: Path, endpoint: str) -> Clients:
    info = projects["users"][user]
    return Clients(endpoint, home / user, openstack_env(ks, user, info["project"], info["password"]))


def test_seed_sharing_flow_with_real_clients(
    glimpse_ks: GlimpseServer, keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    def as_user(user: str) -> Clients:
        return _cli(keystone_server, keystone_projects, user, tmp_path, glimpse_ks.url)

    prj1, prj2, prj3 = as_user("Prj1-member"), as_user("Prj2-member"), as_user("Prj3-member")
    source = tmp_path / "cirros.img"
    source.write_bytes(os.urandom(256 * 1024))
    name = f"shared-{uuid.uuid4().hex[:6]}"
    image = prj1.openstack_json(
        "image", "create", "--disk-format", "raw", "--container-format", "bare", "--shared", "--file", str(source), name
    )
    assert image["owner"] == keystone_projects["projects"]["Prj1"]
    assert image["status"] == "active"

    # A project member may not look projects up by name in Keystone, so the seed's flow names them by id.
    prj1.openstack("image", "add", "project", image["id"], keystone_projects["projects"]["Prj2"])
    assert image["id"] not in [i["ID"] for i in prj2.openstack_json("image", "list")]  # pending: not listed yet
    prj2.openstack("image", "set", "--accept", image["id"])
    assert image["id"] in [i["ID"] for i in prj2.openstack_json("image", "list")]
    downloaded = tmp_path / "copy.img"
    prj2.openstack("image", "save", "--file", str(downloaded), image["id"])
    assert downloaded.read_bytes() == source.read_bytes()
    members = prj1.openstack_json("image", "member", "list", image["id"])
    assert [(m["Member ID"], m["Status"]) for m in members] == [(keystone_projects["projects"]["Prj2"], "accepted")]

    # Prj3 sees nothing of it, and members cannot change or delete it.
    assert image["id"] not in [i["ID"] for i in prj3.openstack_json("image", "list")]
    assert prj3.openstack("image", "show", image["id"], check=False).returncode != 0
    assert prj2.openstack("image", "delete", image["id"], check=False).returncode != 0
    assert as_user("Prj1-reader").openstack("image", "delete", image["id"], check=False).returncode != 0
    assert prj2.openstack("image", "set", "--name", "mine", image["id"], check=False).returncode != 0

    # glance works through the catalog too.
    assert image["id"] in prj2.glance("image-list").stdout

    # Any member of the owning project may change and delete the project's image (not only its creator).
    other_member = as_user("Prj1-admin")
    other_member.openstack("image", "set", "--property", "checked=yes", image["id"])
    prj1.openstack("image", "delete", image["id"])
    assert prj2.openstack("image", "show", image["id"], check=False).returncode != 0


def test_public_images_need_an_admin(
    glimpse_ks: GlimpseServer, keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    member = _cli(keystone_server, keystone_projects, "Prj1-member", tmp_path, glimpse_ks.url)
    refused = member.openstack("image", "create", "--public", f"pub-{uuid.uuid4().hex[:6]}", check=False)
    assert refused.returncode != 0
    assert "publicize_image" in refused.stderr
    admin = _cli(keystone_server, keystone_projects, "Prj1-admin", tmp_path, glimpse_ks.url)
    public = admin.openstack_json("image", "create", "--public", f"pub-{uuid.uuid4().hex[:6]}")
    reader = _cli(keystone_server, keystone_projects, "Prj3-reader", tmp_path, glimpse_ks.url)
    assert public["id"] in [i["ID"] for i in reader.openstack_json("image", "list")]
    admin.openstack("image", "delete", public["id"])


def test_tokens_are_required_and_checked(glimpse_ks: GlimpseServer, keystone_projects: dict[str, Any]) -> None:
    assert httpx.get(f"{glimpse_ks.url}/versions").status_code == 200  # discovery needs no token
    missing = httpx.get(f"{glimpse_ks.url}/v2/images")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith('Keystone uri="http://127.0.0.1')
    assert missing.json()["error"]["code"] == 401
    forged = httpx.get(f"{glimpse_ks.url}/v2/images", headers={"X-Auth-Token": "gAAAA-not-a-token"})
    assert forged.status_code == 401
    token, _ = keystone_projects["token"]("Prj1-reader")
    ok = httpx.get(f"{glimpse_ks.url}/v2/images", headers={"X-Auth-Token": token})
    assert ok.status_code == 200
    # A project-scoped reader may look but not create.
    created = httpx.post(f"{glimpse_ks.url}/v2/images", json={"name": "x"}, headers={"X-Auth-Token": token})
    assert created.status_code == 403


def test_keystone_unreachable_is_503(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    conf = authtoken_conf(keystone_server).replace(keystone_server.base_url, f"http://127.0.0.1:{free_port()}")
    server = GlimpseServer(tmp_path, extra_conf=KEYSTONE_FLAVOR + conf + "http_connect_timeout = 2\n").start()
    try:
        token, _ = keystone_projects["token"]("Prj1-member")
        response = httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": token}, timeout=30)
        assert response.status_code == 503
        assert "unreachable" in response.text
    finally:
        server.stop()


def test_validations_are_shared_through_redis(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    cache = redis.Redis(host="127.0.0.1", port=6379, db=7)
    conf = authtoken_conf(keystone_server) + "redis_url = redis://127.0.0.1:6379/7\ntoken_cache_time = 120\n"
    server = GlimpseServer(tmp_path, extra_conf=KEYSTONE_FLAVOR + conf).start()
    try:
        token, _ = keystone_projects["token"]("Prj2-member")
        before = set(cache.keys("glimpse-token-*"))
        assert httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": token}).status_code == 200
        added = set(cache.keys("glimpse-token-*")) - before
        assert len(added) == 1
        key = added.pop()
        assert token.encode() not in key  # only a hash of the token is stored
        assert 0 < cache.ttl(key) <= 120
        assert httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": token}).status_code == 200
    finally:
        server.stop()
        for key in cache.keys("glimpse-token-*"):
            cache.delete(key)
