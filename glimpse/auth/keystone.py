"""Keystone token validation with the [keystone_authtoken] options operators already have.

Glimpse authenticates itself as its service user (keystoneauth1, password plugin) and asks Keystone
about each caller's token (GET /v3/auth/tokens); answers are cached until min(token_cache_time,
the token's own expiry).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from glimpse.auth.keystone_password import PasswordCredentials, password_session, v3_url
from glimpse.auth.token_cache import TokenCache
from glimpse.errors import GlimpseError

log = logging.getLogger(__name__)


class InvalidToken(GlimpseError):
    pass


class IdentityUnavailable(GlimpseError):
    pass


@dataclass(frozen=True)
class KeystoneSettings:
    auth_url: str
    www_authenticate_uri: str
    username: str
    password: str
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    token_cache_time: int = 300
    timeout: float = 10.0
    # keystonemiddleware's http_request_max_retries: a validation that could not connect, or timed out, is sent
    # again this many times (keystoneauth waits 0.5 s, 1 s, 2 s, ... between tries), and so is Glimpse's own
    # sign-in. Both are safe to repeat, and one dropped connection or a Keystone busy for a moment should not fail
    # a user's request.
    max_retries: int = 3


@dataclass(frozen=True)
class TokenInfo:
    user_id: str
    project_id: str | None
    roles: frozenset[str]
    expires_at: datetime
    catalog: tuple[dict[str, Any], ...] = ()
    system_scope: str | None = None  # "all" for a system-scoped token
    domain_id: str | None = None  # the domain of a domain-scoped token
    user_domain_id: str | None = None
    project_domain_id: str | None = None


class KeystoneValidator:
    def __init__(self, settings: KeystoneSettings, cache: TokenCache) -> None:
        self.settings = settings
        self.cache = cache
        # keystoneauth1 comes with glimpse[keystone]: loaded only when flavor = keystone builds a validator.
        credentials = PasswordCredentials(
            auth_url=settings.auth_url,
            username=settings.username,
            password=settings.password,
            project_name=settings.project_name,
            user_domain_name=settings.user_domain_name,
            project_domain_name=settings.project_domain_name,
        )
        _auth, self._session = password_session(credentials, settings.timeout, settings.max_retries)
        self._tokens_url = v3_url(settings.auth_url) + "/auth/tokens"

    def validate(self, token: str) -> TokenInfo:
        cached = self.cache.get(token)
        if cached is not None:
            try:
                return _from_cache(cached)
            except (KeyError, TypeError, ValueError):
                log.warning("A token cache entry could not be read; the token is validated again.")
        info = self._ask_keystone(token)
        remaining = int((info.expires_at - datetime.now(UTC)).total_seconds())
        ttl = min(self.settings.token_cache_time, remaining)
        if ttl > 0:
            self.cache.set(token, _to_cache(info), ttl)
        return info

    def _ask_keystone(self, token: str) -> TokenInfo:
        from keystoneauth1 import exceptions as ks_exceptions

        try:
            response = self._session.get(
                self._tokens_url, headers={"X-Subject-Token": token}, authenticated=True, raise_exc=False
            )
        except (ks_exceptions.ConnectFailure, ks_exceptions.ConnectTimeout, ks_exceptions.DiscoveryFailure) as exc:
            log.warning("A token could not be validated: Keystone at %s: %s", self.settings.auth_url, exc)
            raise IdentityUnavailable(f"The identity service at {self.settings.auth_url} is unreachable.") from exc
        except ks_exceptions.Unauthorized as exc:
            log.error("Glimpse's own service credentials were refused by Keystone: %s", exc)
            raise IdentityUnavailable("The image service could not authenticate to the identity service.") from exc
        except ks_exceptions.ClientException as exc:
            log.warning("A token could not be validated: Keystone at %s: %s", self.settings.auth_url, exc)
            raise IdentityUnavailable(f"The identity service failed: {exc}.") from exc
        if response.status_code in (401, 404):
            raise InvalidToken("The request you have made requires authentication.")
        if response.status_code >= 500 or response.status_code == 403:
            log.warning(
                "A token could not be validated: Keystone answered %s: %s",
                response.status_code,
                response.text[:500],
            )
            raise IdentityUnavailable(f"The identity service answered {response.status_code}.")
        body: dict[str, Any] = response.json()["token"]
        expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
        if expires <= datetime.now(UTC):
            raise InvalidToken("The request you have made requires authentication.")
        project = body.get("project") or {}
        system = body.get("system") or {}
        return TokenInfo(
            user_id=body["user"]["id"],
            project_id=project.get("id"),
            roles=frozenset(r["name"].lower() for r in body.get("roles", [])),
            expires_at=expires,
            catalog=tuple(body.get("catalog", [])),
            system_scope="all" if system.get("all") else None,
            domain_id=(body.get("domain") or {}).get("id"),
            user_domain_id=(body["user"].get("domain") or {}).get("id"),
            project_domain_id=(project.get("domain") or {}).get("id"),
        )


def _to_cache(info: TokenInfo) -> dict[str, Any]:
    return {
        "user_id": info.user_id,
        "project_id": info.project_id,
        "roles": sorted(info.roles),
        "expires_at": info.expires_at.isoformat(),
        "catalog": list(info.catalog),
        "system_scope": info.system_scope,
        "domain_id": info.domain_id,
        "user_domain_id": info.user_domain_id,
        "project_domain_id": info.project_domain_id,
    }


def _from_cache(value: dict[str, Any]) -> TokenInfo:
    return TokenInfo(
        user_id=value["user_id"],
        project_id=value["project_id"],
        roles=frozenset(value["roles"]),
        expires_at=datetime.fromisoformat(value["expires_at"]),
        catalog=tuple(value.get("catalog", [])),
        system_scope=value.get("system_scope"),
        domain_id=value.get("domain_id"),
        user_domain_id=value.get("user_domain_id"),
        project_domain_id=value.get("project_domain_id"),
    )
