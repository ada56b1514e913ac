from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from keystoneauth1.access.service_catalog import ServiceCatalogV3

from glimpse.dashboard import login
from glimpse.dashboard.login import Identity, KeystoneLogin, LoginFailed, noauth_identity


@pytest.mark.parametrize(("project", "user"), [("p\x00", ""), ("p", "u\x00"), ("", "u"), ("p" * 256, "")])
def test_noauth_login_refuses_unstorable_projects_and_users(project: str, user: str) -> None:
    with pytest.raises(LoginFailed):
        noauth_identity(project, "member", user, 60)


def test_noauth_login() -> None:
    identity = noauth_identity(" prj ", "member", "", 60)
    assert identity.context  # a usable identity


class _Access:
    """What keystoneauth1's AccessInfo may hold: its expiry and role names are optional."""

    def __init__(
        self, expires: datetime | None, role_names: list[str] | None, catalog: list[dict[str, object]] | None = None
    ) -> None:
        self.service_catalog = ServiceCatalogV3(catalog or [])
        self.project_id = "p1"
        self.project_name = "demo"
        self.user_id = "u1"
        self.auth_token = "a-token"
        self.expires = expires
        self.role_names = role_names


class _Plugin:
    def __init__(self, access: _Access) -> None:
        self.access = access

    def get_access(self, session: object) -> _Access:
        return self.access


def _login(monkeypatch: pytest.MonkeyPatch, access: _Access, max_age: int) -> Identity:
    monkeypatch.setattr(login, "password_session", lambda credentials, timeout: (_Plugin(access), None))
    return KeystoneLogin("http://keystone.invalid").authenticate("alice", "secret", "demo", "", max_age)


def test_keystone_login_without_token_expiry_or_roles_lasts_the_session(monkeypatch: pytest.MonkeyPatch) -> None:
    before = time.time()
    identity = _login(monkeypatch, _Access(expires=None, role_names=None), max_age=600)
    assert before + 600 <= identity.expires <= time.time() + 600
    assert identity.roles == ()


def test_keystone_login_ends_with_its_token(monkeypatch: pytest.MonkeyPatch) -> None:
    soon = datetime.now(UTC) + timedelta(seconds=60)
    identity = _login(monkeypatch, _Access(expires=soon, role_names=["Member", "reader"]), max_age=3600)
    assert identity.expires == soon.timestamp()
    assert identity.roles == ("member", "reader")


def test_keystone_login_keeps_the_types_of_the_services_in_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    def service(kind: str, endpoints: int) -> dict[str, object]:
        urls = [{"interface": "public", "url": f"http://{kind}.invalid", "region_id": "r"}] * endpoints
        return {"type": kind, "name": kind, "endpoints": urls}

    catalog = [service("volumev3", 1), service("image", 1), service("compute", 0)]  # no endpoint: not usable
    identity = _login(monkeypatch, _Access(None, ["member"], catalog), max_age=60)
    assert identity.services == ("image", "volumev3")
    restored = Identity.from_session(identity.to_session())
    assert restored is not None and restored.services == ("image", "volumev3")
