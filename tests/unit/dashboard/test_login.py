from __future__ import annotations

import pytest

from glimpse.dashboard.login import LoginFailed, noauth_identity


@pytest.mark.parametrize(("project", "user"), [("p\x00", ""), ("p", "u\x00"), ("", "u"), ("p" * 256, "")])
def test_noauth_login_refuses_unstorable_projects_and_users(project: str, user: str) -> None:
    with pytest.raises(LoginFailed):
        noauth_identity(project, "member", user, 60)


def test_noauth_login() -> None:
    identity = noauth_identity(" prj ", "member", "", 60)
    assert identity.context  # a usable identity
