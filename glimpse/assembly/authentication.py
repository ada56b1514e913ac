"""Who is calling: no authentication (headers give the context) or Keystone tokens, cached as configured."""

from __future__ import annotations

from starlette.middleware import Middleware

from glimpse.api.middleware import KeystoneAuthMiddleware, NoAuthContextMiddleware
from glimpse.assembly import log
from glimpse.auth.policy import Policy
from glimpse.auth.token_cache import InProcessCache, MemcachedCache, Protection, RedisCache, TokenCache
from glimpse.config import Settings
from glimpse.errors import ConfigError
from glimpse.extras import require
from glimpse.optvalues import as_float, as_int, as_list


def auth_middleware(settings: Settings, policy: Policy) -> Middleware:
    """No authentication (headers give the context) or Keystone, as [paste_deploy] flavor says."""
    if settings.auth_flavor in ("", "noauth"):
        return Middleware(NoAuthContextMiddleware, policy=policy)
    if settings.auth_flavor != "keystone":
        raise ConfigError(f"[paste_deploy] flavor = {settings.auth_flavor} is unknown: use keystone or leave it empty.")
    ks = settings.keystone
    missing = [k for k in ("auth_url", "username", "password") if not ks.get(k)]
    if missing:
        raise ConfigError(f"flavor = keystone needs [keystone_authtoken] {', '.join(missing)}.")
    if ks.get("auth_type") not in (None, "password"):
        raise ConfigError(f"[keystone_authtoken] auth_type = {ks['auth_type']} is not supported: use password.")
    require("keystoneauth1", "[paste_deploy] flavor = keystone")
    from glimpse.auth.keystone import KeystoneSettings, KeystoneValidator

    keystone = KeystoneSettings(
        auth_url=str(ks["auth_url"]),
        www_authenticate_uri=str(ks.get("www_authenticate_uri") or ks.get("auth_uri") or ks["auth_url"]),
        username=str(ks["username"]),
        password=str(ks["password"]),
        project_name=str(ks.get("project_name") or "service"),
        user_domain_name=str(ks.get("user_domain_name") or "Default"),
        project_domain_name=str(ks.get("project_domain_name") or "Default"),
        token_cache_time=as_int(ks.get("token_cache_time") or 300),
        timeout=as_float(ks.get("http_connect_timeout") or 10.0),
        max_retries=as_int(ks.get("http_request_max_retries", 3)),
    )
    validator = KeystoneValidator(keystone, token_cache(ks))
    return Middleware(
        KeystoneAuthMiddleware, validator=validator, policy=policy, www_authenticate_uri=keystone.www_authenticate_uri
    )


def token_cache(ks: dict[str, object]) -> TokenCache:
    """In the process, or shared through memcached or Redis with keystonemiddleware's security strategy."""
    secret = ks.get("memcache_secret_key")
    try:
        protection = Protection(str(ks.get("memcache_security_strategy") or "none"), str(secret) if secret else None)
    except ValueError as exc:
        raise ConfigError(f"[keystone_authtoken] {exc}") from None
    if not (ks.get("memcached_servers") or ks.get("redis_url")):
        return InProcessCache()
    if protection.strategy == "none":
        log.warning(
            "[keystone_authtoken] token validations are shared through %s without memcache_security_strategy: "
            "anyone who can write to it can forge a validation. Set MAC or ENCRYPT and memcache_secret_key.",
            "memcached" if ks.get("memcached_servers") else "Redis",
        )
    if ks.get("memcached_servers"):
        require("pymemcache", "[keystone_authtoken] memcached_servers")
        return MemcachedCache([str(s) for s in as_list(ks["memcached_servers"])], protection)
    require("redis", "[keystone_authtoken] redis_url")
    return RedisCache(str(ks["redis_url"]), protection)
