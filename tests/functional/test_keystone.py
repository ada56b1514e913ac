"""Glimpse behind a real Keystone: the seed's sharing flow with the real clients, 401s, 503s and caching."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pymemcache
import pytest
import redis

from glimpse.auth.token_cache import cache_key
from tests.disk_bytes import raw_disk_bytes
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
    source.write_bytes(raw_disk_bytes(256 * 1024))
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


@pytest.mark.parametrize("retries", [None, 0])
def test_keystone_unreachable_is_503(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path, retries: int | None
) -> None:
    """Unset, [keystone_authtoken] http_request_max_retries is keystonemiddleware's 3; an operator's 0 is kept."""
    conf = authtoken_conf(keystone_server).replace(keystone_server.base_url, f"http://127.0.0.1:{free_port()}")
    conf += "http_connect_timeout = 2\n" + ("" if retries is None else f"http_request_max_retries = {retries}\n")
    server = GlimpseServer(tmp_path, extra_conf=KEYSTONE_FLAVOR + conf).start()
    try:
        token, _ = keystone_projects["token"]("Prj1-member")
        response = httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": token}, timeout=30)
        assert response.status_code == 503
        assert "unreachable" in response.text
        # The operator sees why, with the address Glimpse tried, after the retries asked for.
        log = server.log.read_text()
        assert "A token could not be validated: Keystone at http://127.0.0.1:" in log
        assert log.count("Retrying in") == (3 if retries is None else retries)
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


def test_validations_are_shared_through_memcached(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()
    memcached = subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "root"])
    conf = authtoken_conf(keystone_server) + f"memcached_servers = 127.0.0.1:{port}\ntoken_cache_time = 60\n"
    server = GlimpseServer(tmp_path, extra_conf=KEYSTONE_FLAVOR + conf).start()
    try:
        token, _ = keystone_projects["token"]("Prj3-reader")
        assert httpx.get(f"{server.url}/v2/images", headers={"X-Auth-Token": token}).status_code == 200
        cached = pymemcache.Client(("127.0.0.1", port)).get(cache_key(token))
        assert cached is not None
        assert json.loads(cached)["project_id"] == keystone_projects["projects"]["Prj3"]
    finally:
        server.stop()
        memcached.terminate()
        memcached.wait(10)


def test_a_forged_validation_in_redis_is_not_trusted(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    """memcache_security_strategy = MAC: whoever writes to Redis cannot make a member an admin."""
    cache = redis.Redis(host="127.0.0.1", port=6379, db=8)
    conf = authtoken_conf(keystone_server) + "redis_url = redis://127.0.0.1:6379/8\n"
    conf += "memcache_security_strategy = mac\nmemcache_secret_key = shared-by-the-api-nodes\n"
    server = GlimpseServer(tmp_path, extra_conf=KEYSTONE_FLAVOR + conf).start()
    try:
        token, _ = keystone_projects["token"]("Prj2-member")
        headers = {"X-Auth-Token": token}
        assert httpx.get(f"{server.url}/v2/images", headers=headers).status_code == 200
        keys = cache.keys("glimpse-token-*")
        assert keys and cache_key(token).encode() not in keys  # keyed with the secret too
        project = keystone_projects["projects"]["Prj2"]
        forged = json.dumps({"user_id": "x", "project_id": project, "roles": ["admin", "member", "reader"],
                             "expires_at": "2999-01-01T00:00:00+00:00", "catalog": []})  # fmt: skip
        for key in [*keys, cache_key(token).encode()]:
            cache.set(key, forged, ex=60)
        public = {"name": "pub", "visibility": "public", "disk_format": "raw", "container_format": "bare"}
        refused = httpx.post(f"{server.url}/v2/images", json=public, headers=headers)
        assert refused.status_code == 403, refused.text
        assert "publicize_image" in refused.text
        assert "without memcache_security_strategy" not in server.log.read_text()
    finally:
        server.stop()
        for key in cache.keys("glimpse-token-*"):
            cache.delete(key)


def test_system_scope_from_the_token_reaches_the_policy(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    """A Glance policy.yaml whose admin is `role:admin and system_scope:all` is read as Glance reads it:
    a project admin is no admin, and a system-scoped token meets the image rules' project scope (403)."""
    (tmp_path / "policy.yaml").write_text('"context_is_admin": "role:admin and system_scope:all"\n')
    server = GlimpseServer(tmp_path, extra_conf=KEYSTONE_FLAVOR + authtoken_conf(keystone_server)).start()
    try:
        public = {"name": "pub", "visibility": "public", "disk_format": "raw", "container_format": "bare"}
        project_admin = {"X-Auth-Token": keystone_projects["token"]("Prj1-admin")[0]}
        refused = httpx.post(f"{server.url}/v2/images", json=public, headers=project_admin)
        assert refused.status_code == 403, refused.text
        assert httpx.get(f"{server.url}/v2/images", headers=project_admin).status_code == 200
        with _system_admin(keystone_server) as ks:
            system_admin = {"X-Auth-Token": ks.headers["X-Auth-Token"]}
        assert httpx.get(f"{server.url}/v2/images", headers=system_admin).status_code == 403
        assert httpx.post(f"{server.url}/v2/images", json=public, headers=system_admin).status_code == 403
    finally:
        server.stop()


def _system_admin(ks: KeystoneServer) -> httpx.Client:
    auth = {
        "identity": {
            "methods": ["password"],
            "password": {
                "user": {"name": ks.admin_username, "domain": {"name": "Default"}, "password": ks.admin_password}
            },
        },
        "scope": {"system": {"all": True}},
    }
    response = httpx.post(f"{ks.url}/auth/tokens", json={"auth": auth}, timeout=60)
    response.raise_for_status()
    return httpx.Client(base_url=ks.url + "/", headers={"X-Auth-Token": response.headers["X-Subject-Token"]})


def test_keystone_unified_limits(
    glimpse_ks: GlimpseServer, keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    """use_keystone_limits: limits registered in Keystone for the image endpoint, read through oslo.limit."""
    projects, users = keystone_projects["projects"], keystone_projects["users"]
    oslo_limit = (
        "[oslo_limit]\n"
        f"auth_url = {keystone_server.base_url}\nauth_type = password\nusername = glance\n"
        f"password = {users['glance']['password']}\nuser_domain_name = Default\nsystem_scope = all\n"
        "endpoint_service_type = image\nendpoint_region_name = RegionOne\nendpoint_interface = public\n"
    )
    conf = "use_keystone_limits = true\n" + KEYSTONE_FLAVOR + authtoken_conf(keystone_server) + oslo_limit
    server = GlimpseServer(tmp_path, extra_conf=conf)
    service_id = register_image_service(keystone_server, server.url)  # oslo.limit finds limits by this endpoint
    with _system_admin(keystone_server) as admin:
        # The service user reads limits with a system-scoped reader role, as Glance's guide sets it up.
        granted = admin.put(f"system/users/{users['glance']['id']}/roles/{keystone_projects['roles']['reader']}")
        assert granted.status_code in (200, 204), granted.text
        existing = admin.get("registered_limits", params={"service_id": service_id}).json()["registered_limits"]
        for limit in existing:
            admin.delete(f"registered_limits/{limit['id']}")
        defaults = {"image_count_total": 2, "image_size_total": 1, "image_stage_total": 0, "image_count_uploading": 2}
        # Limits belong to the endpoint's region, which is where oslo.limit looks for them.
        body = [
            {"service_id": service_id, "region_id": "RegionOne", "resource_name": k, "default_limit": v}
            for k, v in defaults.items()
        ]
        created = admin.post("registered_limits", json={"registered_limits": body})
        assert created.status_code == 201, created.text
        override = [{"service_id": service_id, "region_id": "RegionOne", "project_id": projects["Prj2"],
                     "resource_name": "image_count_total", "resource_limit": 5}]  # fmt: skip
        assert admin.post("limits", json={"limits": override}).status_code == 201
    server.start()
    try:

        def headers(user: str) -> dict[str, str]:
            return {"X-Auth-Token": keystone_projects["token"](user)[0]}

        prj1 = headers("Prj1-member")
        created = [httpx.post(f"{server.url}/v2/images", json={"name": f"l{i}"}, headers=prj1) for i in range(3)]
        assert [r.status_code for r in created] == [201, 201, 413]
        usage = httpx.get(f"{server.url}/v2/info/usage", headers=prj1).json()["usage"]
        assert usage["image_count_total"] == {"limit": 2, "usage": 2, "binned": 0}
        assert usage["image_size_total"]["limit"] == 1
        upload = httpx.put(
            f"{server.url}/v2/images/{created[0].json()['id']}/file",
            content=b"x" * (2 * 1024 * 1024),
            headers={**prj1, "Content-Type": "application/octet-stream"},
        )
        # no formats set: refused before any quota question; set them and try again
        assert upload.status_code == 400
        patch = {**prj1, "Content-Type": "application/openstack-images-v2.1-json-patch"}
        ops = [
            {"op": "add", "path": "/disk_format", "value": "raw"},
            {"op": "add", "path": "/container_format", "value": "bare"},
        ]
        assert (
            httpx.patch(f"{server.url}/v2/images/{created[0].json()['id']}", json=ops, headers=patch).status_code == 200
        )
        upload = httpx.put(
            f"{server.url}/v2/images/{created[0].json()['id']}/file",
            content=b"x" * (2 * 1024 * 1024),
            headers={**prj1, "Content-Type": "application/octet-stream"},
        )
        assert upload.status_code == 413
        prj2 = httpx.get(f"{server.url}/v2/info/usage", headers=headers("Prj2-member")).json()["usage"]
        assert prj2["image_count_total"]["limit"] == 5
        refused = httpx.put(
            f"{server.url}/v2/quotas/{projects['Prj1']}", json={"image_count_total": 9}, headers=headers("Prj1-admin")
        )
        assert refused.status_code == 400  # limits live in Keystone here
    finally:
        server.stop()
        register_image_service(keystone_server, glimpse_ks.url)  # the catalog points at the shared server again
        with _system_admin(keystone_server) as admin:
            for limit in admin.get("limits", params={"service_id": service_id}).json()["limits"]:
                admin.delete(f"limits/{limit['id']}")
            for limit in admin.get("registered_limits", params={"service_id": service_id}).json()["registered_limits"]:
                admin.delete(f"registered_limits/{limit['id']}")
