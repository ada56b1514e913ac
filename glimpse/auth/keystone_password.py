"""Keystone v3 password authentication, the one way Glimpse signs in to Keystone.

The token validator signs in as Glimpse's service user; the dashboard signs a person in. Both build the
same keystoneauth1 password plugin and session here. keystoneauth1 comes with glimpse[keystone] and is
imported only when a session is made, so the default install never needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keystoneauth1 is imported when a session is made (glimpse[keystone])
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3


def v3_url(auth_url: str) -> str:
    """Keystone's v3 root for an auth URL given with or without its /v3 suffix."""
    url = auth_url.rstrip("/")
    return url if url.endswith("/v3") else url + "/v3"


@dataclass(frozen=True)
class PasswordCredentials:
    auth_url: str
    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"


def password_session(
    credentials: PasswordCredentials, timeout: float, connect_retries: int = 0
) -> tuple[v3.Password, ks_session.Session]:
    """(plugin, session): a keystoneauth1 v3.Password plugin scoped to the project, and a session using it.

    `connect_retries`: times a request that could not connect, or timed out, is sent again (the sign-in too).
    """
    from keystoneauth1 import session as ks_session
    from keystoneauth1.identity import v3

    auth = v3.Password(
        auth_url=v3_url(credentials.auth_url),
        username=credentials.username,
        password=credentials.password,
        project_name=credentials.project_name,
        user_domain_name=credentials.user_domain_name,
        project_domain_name=credentials.project_domain_name,
    )
    return auth, ks_session.Session(auth=auth, timeout=timeout, connect_retries=connect_retries)
