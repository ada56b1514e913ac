"""[paste_deploy] flavor (whether requests are authenticated) and [keystone_authtoken] (keystonemiddleware's
option names), read by the token validator and the dashboard's login. auth_url, username, password, project_name and the
domain names are keystoneauth's password-plugin options, which keystonemiddleware loads by auth_type; keystoneauth
gives them no defaults, Glimpse gives the project and domains the usual ones.

Also where the files that say who may do what are found: [oslo_policy] policy_file and property_protection_file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from oslo_config import cfg
from oslo_policy import opts as policy_opts

from glimpse.errors import ConfigError

PASTE_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "flavor",
        help="'keystone' to authenticate requests; unset or empty for no authentication. Glance's cache pipelines "
        "(keystone+caching, keystone+cachemanagement; caching, cachemanagement) add the image cache to downloads "
        "when image_cache_dir is set.",
    ),
]
AUTHTOKEN_OPTS: list[cfg.Opt] = [
    cfg.StrOpt("www_authenticate_uri", help="Keystone URL clients are sent to (WWW-Authenticate)."),
    cfg.StrOpt(
        "auth_uri",
        deprecated_for_removal=True,
        help="Older name of www_authenticate_uri (gone from keystonemiddleware; Glimpse still reads it).",
    ),
    cfg.StrOpt("auth_url", help="Keystone URL Glimpse authenticates its service user against."),
    cfg.StrOpt(
        "auth_type",
        default="password",
        help="Only 'password' is supported; Glimpse assumes it when unset (keystoneauth has no default).",
    ),
    cfg.StrOpt("username", help="Glimpse's service user."),
    cfg.StrOpt("password", secret=True, help="Password of the service user."),
    cfg.StrOpt("project_name", default="service", help="Project of the service user (Glimpse's default)."),
    cfg.StrOpt("user_domain_name", default="Default", help="Domain of the service user (Glimpse's default)."),
    cfg.StrOpt("project_domain_name", default="Default", help="Domain of the service project (Glimpse's default)."),
    cfg.IntOpt("token_cache_time", default=300, help="Seconds a validated token is remembered (never past expiry)."),
    cfg.ListOpt("memcached_servers", help="memcached host:port list to share validated tokens."),
    cfg.StrOpt("redis_url", help="Redis URL (redis://host:port/db) to share validated tokens instead (Glimpse's own)."),
    cfg.StrOpt(
        "memcache_security_strategy",
        default="None",
        choices=("None", "MAC", "ENCRYPT"),
        ignore_case=True,
        help="None, MAC or ENCRYPT (any case): authenticate (MAC) or also encrypt (ENCRYPT) the validations shared "
        "through memcached or Redis, so whoever can write to the cache cannot forge one. Needs memcache_secret_key.",
    ),
    cfg.StrOpt(
        "memcache_secret_key", secret=True, help="Secret the shared cache entries are authenticated and encrypted with."
    ),
    cfg.IntOpt(
        "http_connect_timeout",
        help="Seconds to wait for Keystone; 10 when unset (keystonemiddleware waits without limit).",
    ),
    cfg.IntOpt(
        "http_request_max_retries",
        default=3,
        min=0,
        help="Times a token validation that could not connect to Keystone, or timed out, is tried again.",
    ),
    cfg.StrOpt("region_name", help="Region of the identity service (informational)."),
    cfg.StrOpt("interface", default="internal", help="Identity endpoint interface (informational)."),
]

# Glance's paste pipelines add its image cache to a flavor (keystone+caching, keystone+cachemanagement).
_CACHE_FLAVORS = ("caching", "cachemanagement")


def split_flavor(flavor: str | None) -> tuple[str, tuple[str, ...]]:
    """[paste_deploy] flavor -> (its authentication part, its cache parts, as `[paste_deploy] flavor +part`)."""
    parts = [p.strip() for p in (flavor or "").split("+") if p.strip()]
    cache = tuple(f"[paste_deploy] flavor +{p}" for p in parts if p in _CACHE_FLAVORS)
    return "+".join(p for p in parts if p not in _CACHE_FLAVORS), cache


def _beside(name: str, config_files: list[str], is_kind: Callable[[Path], bool] = Path.is_file) -> str | None:
    """The file (or folder) as named, or beside a configuration file (as oslo.policy and oslo.config's find_file
    look)."""
    for candidate in [Path(name)] + [Path(f).parent / name for f in config_files]:
        if is_kind(candidate):
            return str(candidate.absolute())
    return None


def find_policy_file(name: str, config_files: list[str]) -> str | None:
    """The operator's policy file; the default name may be absent, a name the operator chose must exist."""
    found = _beside(name, config_files)
    if found is None and name != "policy.yaml":
        raise ConfigError(f"Policy file {name} not found.")
    return found


def find_policy_dirs(names: list[str], config_files: list[str]) -> list[str]:
    """[oslo_policy] policy_dirs, a relative one found beside a configuration file as Glance finds it
    (/etc/glance/policy.d); one found nowhere stays as named (oslo.policy skips a folder it cannot find)."""
    return [_beside(name, config_files, Path.is_dir) or name for name in names]


def policy_options(conf: cfg.ConfigOpts, config_files: list[str]) -> dict[str, object]:
    """[oslo_policy] but policy_file (found by find_policy_file), as oslo.policy's enforcer reads them."""
    group = conf.oslo_policy
    values: dict[str, object] = {opt.dest: group[opt.dest] for opt in policy_opts._options if opt.dest != "policy_file"}
    values["policy_dirs"] = find_policy_dirs(list(group.policy_dirs), config_files)
    return values


def find_protection_file(name: str | None, config_files: list[str]) -> str | None:
    """property_protection_file, which must exist when named; None when protections are off."""
    if not name:
        return None
    found = _beside(name, config_files)
    if found is None:
        raise ConfigError(f"property_protection_file {name} not found: the service does not start without it.")
    return found
