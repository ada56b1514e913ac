"""The real Keystone the functional tests log in with: tokens, roles, the catalog, and the real openstack CLI."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.keystone.server import ROOT, KeystoneServer
from tests.keystone.setup import (
    admin_client,
    image_endpoints,
    issue_token,
    openstack_env,
    register_image_service,
    unregister_image_service,
)

OPENSTACK = Path(os.environ.get("GLIMPSE_CLIENTS_VENV", ROOT / ".venv-clients")) / "bin" / "openstack"
needs_openstack_cli = pytest.mark.skipif(not OPENSTACK.exists(), reason=f"{OPENSTACK} is not installed")


def role_names(token: dict[str, Any]) -> set[str]:
    return {role["name"] for role in token["roles"]}


def openstack(env: dict[str, str], home: Path, *args: str) -> Any:
    home.mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    result = subprocess.run(
        [str(OPENSTACK), *args, "-f", "json"],
        capture_output=True,
        text=True,
        env={**environ, "HOME": str(home), **env},
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert result.returncode == 0, f"openstack {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def test_identity_v3_answers(keystone_server: KeystoneServer) -> None:
    version = httpx.get(keystone_server.url).json()["version"]
    assert version["id"].startswith("v3.")
    assert version["status"] == "stable"


def test_member_token_is_scoped_to_its_project(keystone_projects: dict[str, Any]) -> None:
    token_id, token = keystone_projects["token"]("Prj1-member")
    assert token_id
    assert token["project"]["id"] == keystone_projects["projects"]["Prj1"]
    assert token["project"]["name"] == "Prj1"
    assert token["user"]["id"] == keystone_projects["users"]["Prj1-member"]["id"]
    assert role_names(token) == {"member", "reader"}  # member implies reader
    assert any(entry["type"] == "identity" for entry in token["catalog"])


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("Prj2-admin", {"admin", "manager", "member", "reader"}),
        ("Prj2-reader", {"reader"}),
        ("glance", {"admin", "manager", "member", "reader"}),
    ],
)
def test_roles_by_user(keystone_projects: dict[str, Any], user: str, expected: set[str]) -> None:
    _, token = keystone_projects["token"](user)
    assert role_names(token) == expected
    assert token["project"]["id"] == keystone_projects["users"][user]["project_id"]


def test_bad_password_is_401(keystone_server: KeystoneServer, keystone_projects: dict[str, Any]) -> None:
    with pytest.raises(httpx.HTTPStatusError) as caught:
        issue_token(keystone_server.url, "Prj1-member", "not-the-password", "Prj1")
    assert caught.value.response.status_code == 401


def test_no_token_for_another_project(keystone_projects: dict[str, Any]) -> None:
    with pytest.raises(httpx.HTTPStatusError) as caught:
        keystone_projects["token"]("Prj1-member", "Prj2")
    assert caught.value.response.status_code == 401


def test_service_user_validates_user_tokens(keystone_server: KeystoneServer, keystone_projects: dict[str, Any]) -> None:
    """What keystonemiddleware does with [keystone_authtoken]'s user: GET /v3/auth/tokens."""
    options = keystone_projects["keystone_authtoken"]
    service_token, _ = issue_token(
        keystone_server.url, options["username"], options["password"], options["project_name"]
    )
    user_token, _ = keystone_projects["token"]("Prj3-reader")
    response = httpx.get(
        f"{keystone_server.url}/auth/tokens", headers={"X-Auth-Token": service_token, "X-Subject-Token": user_token}
    )
    assert response.status_code == 200, response.text
    token = response.json()["token"]
    assert token["project"]["id"] == keystone_projects["projects"]["Prj3"]
    assert role_names(token) == {"reader"}
    bogus = httpx.get(
        f"{keystone_server.url}/auth/tokens", headers={"X-Auth-Token": service_token, "X-Subject-Token": "bogus"}
    )
    assert bogus.status_code == 404


def test_concurrent_token_requests(keystone_projects: dict[str, Any]) -> None:
    """SQLite under parallel logins (each writes nothing, but checks passwords and reads assignments)."""
    users = [f"{p}-{r}" for p in ("Prj1", "Prj2", "Prj3") for r in ("admin", "member", "reader")] * 2
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda user: keystone_projects["token"](user), users))
    assert len({token_id for token_id, _ in tokens}) == len(users)


def test_concurrent_writes(keystone_server: KeystoneServer, keystone_projects: dict[str, Any]) -> None:
    """Parallel creations and deletions on SQLite: no "database is locked" (see KeystoneServer's docstring)."""
    names = [f"concurrent-{i}" for i in range(12)]

    def create_and_delete(name: str) -> int:
        with admin_client(keystone_server) as client:
            body = {"user": {"name": name, "password": "x", "domain_id": "default"}}
            created = client.post("users", json=body)
            assert created.status_code == 201, created.text
            return client.delete(f"users/{created.json()['user']['id']}").status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(create_and_delete, names)) == [204] * len(names)


def test_restart_keeps_state_and_port(tmp_path: Path) -> None:
    ks = KeystoneServer(tmp_path / "ks").start()
    try:
        url = ks.url
        admin_token, _ = issue_token(url, ks.admin_username, ks.admin_password, ks.admin_project)
        ks.stop()
        again = KeystoneServer(tmp_path / "ks")  # the same workdir: the same port, users and keys
        assert again.url == url
        again.start()
        try:
            _, token = issue_token(url, ks.admin_username, ks.admin_password, ks.admin_project)
            assert role_names(token) >= {"admin"}
            # Same fernet keys: a token issued before the restart is still valid.
            checked = httpx.get(
                f"{url}/auth/tokens", headers={"X-Auth-Token": admin_token, "X-Subject-Token": admin_token}
            )
            assert checked.status_code == 200, checked.text
        finally:
            again.stop()
    finally:
        ks.stop()


def test_start_failure_reports_the_log(tmp_path: Path) -> None:
    broken = KeystoneServer(tmp_path / "broken")
    # Keystone checks its fernet key repositories when the app loads (the database is opened lazily, so a bad
    # connection URL alone would not stop it). They are named explicitly: Keystone's default,
    # /etc/keystone/fernet-keys/, may exist on one machine and not on another.
    missing = tmp_path / "no-such-fernet-keys"
    (tmp_path / "broken" / "keystone.conf").write_text(
        f"[fernet_tokens]\nkey_repository = {missing}\n[fernet_receipts]\nkey_repository = {missing}\n"
    )
    broken.bootstrapped.write_text(f"{broken.port}\n")  # pretend it was set up: gunicorn's worker fails to boot
    try:
        with pytest.raises(RuntimeError, match="exited with") as caught:
            broken.start(timeout=60)
    finally:
        broken.stop()  # if it started after all, leave no gunicorn behind
    assert "Keystone exited while loading" in str(caught.value)  # the log's tail comes with the error
    assert str(missing) in str(caught.value)
    assert "Worker failed to boot" in str(caught.value)
    assert broken.proc is None


@needs_openstack_cli
def test_openstack_token_issue(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    user = keystone_projects["users"]["Prj2-reader"]
    env = openstack_env(keystone_server, "Prj2-reader", "Prj2", user["password"])
    issued = openstack(env, tmp_path / "home", "token", "issue")
    assert issued["project_id"] == keystone_projects["projects"]["Prj2"]
    assert issued["user_id"] == user["id"]
    assert issued["id"]


@needs_openstack_cli
def test_openstack_catalog_lists_the_image_service(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path: Path
) -> None:
    before = image_endpoints(keystone_server)  # another test's real endpoint, if any, is put back afterwards
    dummy = "http://127.0.0.1:9/dummy-image-endpoint"
    register_image_service(keystone_server, dummy)
    try:
        assert image_endpoints(keystone_server) == {"public": dummy, "internal": dummy, "admin": dummy}
        user = keystone_projects["users"]["Prj2-member"]
        env = openstack_env(keystone_server, "Prj2-member", "Prj2", user["password"])
        catalog = openstack(env, tmp_path / "home", "catalog", "list")
        entries = {entry["Type"]: entry for entry in catalog}
        assert entries["image"]["Name"] == "glance"
        listed = {(e["interface"], e["region"], e["url"]) for e in entries["image"]["Endpoints"]}
        assert listed == {(i, "RegionOne", dummy) for i in ("public", "internal", "admin")}
        assert entries["identity"]["Name"] == "keystone"
    finally:
        if before:
            register_image_service(keystone_server, before["public"])
        else:
            unregister_image_service(keystone_server)
