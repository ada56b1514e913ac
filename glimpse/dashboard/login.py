"""Who the dashboard user is: a project and role chosen at login (no-auth mode) or a Keystone login.

Either way the session keeps an Identity, and each request turns it into the same RequestContext
the REST API builds, so the domain's policy checks apply unchanged.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.auth.keystone_password import PasswordCredentials, password_session, v3_url
from glimpse.auth.policy import Policy
from glimpse.dashboard.i18n import N_
from glimpse.dashboard.messages import Phrased

# The roles offered in no-auth mode, with the ones Keystone's defaults imply (as the API's X-Roles).
NOAUTH_ROLES: dict[str, tuple[str, ...]] = {
    "reader": ("reader",),
    "member": ("member", "reader"),
    "admin": ("admin", "member", "reader"),
}


class LoginFailed(Phrased):
    pass


@dataclass(frozen=True)
class Identity:
    project_id: str
    project_name: str
    user_id: str | None
    user_name: str
    roles: tuple[str, ...]
    expires: float
    token: str | None = field(default=None, repr=False, compare=False)  # Keystone's, to list and switch projects
    services: tuple[str, ...] = ()  # the types of the services in the user's catalog (Keystone logins)

    def to_session(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "project_name": self.project_name,
            "user_id": self.user_id,
            "user_name": self.user_name,
            "roles": list(self.roles),
            "expires": self.expires,
            "services": list(self.services),
        }

    @classmethod
    def from_session(cls, data: dict[str, Any]) -> Identity | None:
        if not data.get("project_id"):
            return None
        return cls(
            project_id=data["project_id"],
            project_name=data.get("project_name") or data["project_id"],
            user_id=data.get("user_id"),
            user_name=data.get("user_name") or "",
            roles=tuple(data.get("roles") or ()),
            expires=float(data.get("expires") or 0),
            services=tuple(data.get("services") or ()),
        )

    def context(self, policy: Policy, request_id: str = "") -> RequestContext:
        roles = frozenset(self.roles)
        return RequestContext(
            project_id=self.project_id,
            user_id=self.user_id,
            roles=roles,
            request_id=request_id,
            is_admin=policy.check_roles(roles, self.project_id, "context_is_admin"),
        )


def noauth_identity(project: str, role: str, user: str, max_age: int) -> Identity:
    project = project.strip()
    if not project or len(project) > 255 or "\x00" in project + user:
        raise LoginFailed(N_("Enter a project id (at most 255 characters, no NUL)."))
    if role not in NOAUTH_ROLES:
        raise LoginFailed(N_("Choose a role: %(roles)s."), roles=", ".join(NOAUTH_ROLES))
    user = user.strip() or f"{role}@{project}"
    return Identity(project, project, user, user, NOAUTH_ROLES[role], time.time() + max_age)


class KeystoneLogin:
    """Password authentication against Keystone, scoped to a project, as the `openstack` CLI does."""

    def __init__(self, auth_url: str, timeout: float = 10.0) -> None:
        self.auth_url = v3_url(auth_url)
        self.timeout = timeout

    def authenticate(self, user: str, password: str, project: str, domain: str, max_age: int) -> Identity:
        if not (user and password and project):
            raise LoginFailed(N_("Enter your user name, password and project."))
        credentials = PasswordCredentials(
            auth_url=self.auth_url,
            username=user,
            password=password,
            project_name=project,
            user_domain_name=domain or "Default",
            project_domain_name=domain or "Default",
        )
        auth, session = password_session(credentials, self.timeout)
        with _refusals(N_("The user name, password or project is not right.")):
            access = auth.get_access(session)
        return _identity(access, user, project, max_age)

    def rescope(self, token: str, project_id: str, user: str, max_age: int) -> Identity:
        """A token scoped to another of the user's projects, from the one they hold: no password again."""
        from keystoneauth1 import session as ks_session
        from keystoneauth1.identity import v3

        auth = v3.Token(auth_url=self.auth_url, token=token, project_id=project_id)
        with _refusals(N_("Your login has ended or you have no role on that project; log in again.")):
            access = auth.get_access(ks_session.Session(auth=auth, timeout=self.timeout))
        return _identity(access, user, project_id, max_age)

    def projects(self, token: str) -> list[dict[str, str]]:
        """[{id, name}] of the projects the token's user may scope to (GET /v3/auth/projects), by name."""
        from keystoneauth1 import session as ks_session

        with _refusals(N_("The identity service did not list your projects.")):
            response = ks_session.Session(timeout=self.timeout).get(
                f"{self.auth_url}/auth/projects", headers={"X-Auth-Token": token}, authenticated=False
            )
        found = response.json().get("projects") or []
        listed = [{"id": str(p["id"]), "name": str(p.get("name") or p["id"])} for p in found if p.get("enabled", True)]
        return sorted(listed, key=lambda p: p["name"].lower())


@contextmanager
def _refusals(unauthorized: str) -> Iterator[None]:
    """Keystone's answers as LoginFailed messages a person can act on."""
    # keystoneauth1 comes with glimpse[keystone]; app.py checks it is there when flavor = keystone.
    from keystoneauth1 import exceptions as ks_exceptions

    try:
        yield
    except ks_exceptions.Unauthorized:
        raise LoginFailed(unauthorized) from None
    except (ks_exceptions.ConnectFailure, ks_exceptions.ConnectTimeout, ks_exceptions.DiscoveryFailure):
        raise LoginFailed(N_("The identity service cannot be reached; try again later.")) from None
    except ks_exceptions.ClientException as exc:
        raise LoginFailed(N_("The identity service refused the login: %(reason)s."), reason=str(exc)) from None


def _identity(access: Any, user: str, project: str, max_age: int) -> Identity:
    if not access.project_id:
        raise LoginFailed(N_("You have no role on project %(project)s."), project=project)
    # keystoneauth1 says either may be missing: a token without an expiry lasts as long as the dashboard's
    # session may, one without roles gives none.
    token_expires = access.expires.timestamp() if access.expires is not None else math.inf
    expires = min(token_expires, time.time() + max_age)
    roles = tuple(sorted(r.lower() for r in access.role_names or ()))
    services = tuple(sorted(kind for kind, found in access.service_catalog.get_endpoints().items() if found))
    return Identity(
        access.project_id,
        access.project_name or project,
        access.user_id,
        user,
        roles,
        expires,
        token=access.auth_token,
        services=services,
    )
