"""Configuration: oslo.config options read from a glance-api.conf-style file.

The options keep Glance's names and sections so an operator's existing file works as-is.
`load_settings` turns them, once, into one typed `Settings` object that is passed down;
nothing else in Glimpse reads oslo.config.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from oslo_config import cfg
from oslo_policy import opts as policy_opts

from glimpse.errors import ConfigError

TIB = 1024**4

DEFAULT_OPTS = [
    cfg.HostAddressOpt("bind_host", default="127.0.0.1", help="Address the API listens on."),
    cfg.PortOpt("bind_port", default=9292, help="Port the API listens on."),
    cfg.IntOpt("workers", default=1, min=1, help="Number of API worker processes."),
    cfg.IntOpt("image_size_cap", default=TIB, min=0, help="Largest image accepted, in bytes."),
    cfg.StrOpt(
        "user_storage_quota",
        default="0",
        help="Bytes of image data each project may store (units B, KB, MB, GB, TB allowed); 0 is unlimited.",
    ),
    cfg.IntOpt("image_property_quota", default=128, help="Extra properties per image; negative is unlimited."),
    cfg.IntOpt("image_tag_quota", default=128, help="Tags per image; negative is unlimited."),
    cfg.IntOpt("image_member_quota", default=128, help="Members per image; negative is unlimited."),
    cfg.IntOpt("image_location_quota", default=10, help="Locations per image; negative is unlimited."),
    cfg.IntOpt("limit_param_default", default=25, min=1, help="Page size when a list names no limit."),
    cfg.IntOpt("api_limit_max", default=1000, min=1, help="Largest page size a list may ask for."),
    cfg.BoolOpt("show_image_direct_url", default=False, help="Show the image's direct_url."),
    cfg.BoolOpt("show_multiple_locations", default=False, help="Show the image's locations."),
    cfg.StrOpt("hashing_algorithm", default="sha512", help="Algorithm of os_hash_value."),
    cfg.StrOpt("data_dir", default="glimpse-data", help="Folder for the embedded database and image files."),
    cfg.BoolOpt(
        "allow_insecure_noauth_bind",
        default=False,
        help="Allow binding a non-loopback address without authentication.",
    ),
    cfg.ListOpt(
        "enabled_import_methods",
        default=["glance-direct", "web-download", "copy-image"],
        help="Interoperable import methods offered.",
    ),
    cfg.StrOpt("public_endpoint", help="Public URL of the API, used in the versions document."),
]
DATABASE_OPTS = [
    cfg.StrOpt("connection", secret=True, help="SQLAlchemy URL of the database."),
]
STORE_OPTS = [
    cfg.ListOpt("stores", default=["file", "http"], help="Store types enabled (single-store mode)."),
    cfg.StrOpt("default_store", default="file", help="Store type new data goes to."),
    cfg.StrOpt("filesystem_store_datadir", help="Folder of the file store."),
]
AUTHTOKEN_OPTS = [
    cfg.StrOpt("www_authenticate_uri", help="Keystone URL clients are sent to (WWW-Authenticate)."),
    cfg.StrOpt("auth_uri", deprecated_for_removal=True, help="Older name of www_authenticate_uri."),
    cfg.StrOpt("auth_url", help="Keystone URL Glimpse authenticates its service user against."),
    cfg.StrOpt("auth_type", default="password", help="Only 'password' is supported."),
    cfg.StrOpt("username", help="Glimpse's service user."),
    cfg.StrOpt("password", secret=True, help="Password of the service user."),
    cfg.StrOpt("project_name", default="service", help="Project of the service user."),
    cfg.StrOpt("user_domain_name", default="Default", help="Domain of the service user."),
    cfg.StrOpt("project_domain_name", default="Default", help="Domain of the service project."),
    cfg.IntOpt("token_cache_time", default=300, help="Seconds a validated token is remembered (never past expiry)."),
    cfg.ListOpt("memcached_servers", default=[], help="memcached host:port list to share validated tokens."),
    cfg.StrOpt("redis_url", help="Redis URL (redis://host:port/db) to share validated tokens instead."),
    cfg.FloatOpt("http_connect_timeout", default=10.0, help="Seconds to wait for Keystone."),
    cfg.StrOpt("region_name", help="Region of the identity service (informational)."),
    cfg.StrOpt("interface", default="internal", help="Identity endpoint interface (informational)."),
]
DASHBOARD_OPTS = [
    cfg.StrOpt("secret_key", secret=True, help="Key signing dashboard sessions; generated in data_dir when unset."),
]
PASTE_OPTS = [
    cfg.StrOpt("flavor", default="", help="'keystone' to authenticate requests; empty for no authentication."),
]

SECTIONS: dict[str, list[cfg.Opt]] = {
    "DEFAULT": DEFAULT_OPTS,
    "database": DATABASE_OPTS,
    "glance_store": STORE_OPTS,
    "paste_deploy": PASTE_OPTS,
    "keystone_authtoken": AUTHTOKEN_OPTS,
    "dashboard": DASHBOARD_OPTS,
    "oslo_policy": list(policy_opts._options),  # oslo.policy's own options, read by auth/policy.py
}


def list_opts() -> list[tuple[str | None, list[cfg.Opt]]]:
    """For oslo-config-generator."""
    return [(None if s == "DEFAULT" else s, opts) for s, opts in SECTIONS.items()]


@dataclass(frozen=True)
class Settings:
    bind_host: str = "127.0.0.1"
    bind_port: int = 9292
    workers: int = 1
    data_dir: Path = Path("glimpse-data")
    database_url: str = ""
    image_size_cap: int = TIB
    user_storage_quota: int = 0
    image_property_quota: int = 128
    image_tag_quota: int = 128
    image_member_quota: int = 128
    image_location_quota: int = 10
    limit_param_default: int = 25
    api_limit_max: int = 1000
    show_image_direct_url: bool = False
    show_multiple_locations: bool = False
    hashing_algorithm: str = "sha512"
    stores: tuple[str, ...] = ("file", "http")
    default_store: str = "file"
    filesystem_store_datadir: Path = Path("glimpse-data/images")
    auth_flavor: str = ""
    allow_insecure_noauth_bind: bool = False
    enabled_import_methods: tuple[str, ...] = ("glance-direct", "web-download", "copy-image")
    public_endpoint: str | None = None
    policy_file: str | None = None
    keystone: dict[str, object] = field(default_factory=dict)
    dashboard_secret_key: str | None = None
    unknown_options: tuple[str, ...] = field(default=())

    @property
    def embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")


_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?B)?\s*$", re.IGNORECASE)
_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def parse_size(text: str) -> int:
    """'10GB' -> bytes, as Glance's user_storage_quota accepts."""
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"Invalid size {text!r}: use a number with an optional unit B, KB, MB, GB or TB.")
    return int(match.group(1)) * _UNITS[(match.group(2) or "B").upper()]


def _new_conf() -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    for section, opts in SECTIONS.items():
        conf.register_opts(opts, group=None if section == "DEFAULT" else section)
    return conf


def _config_files(files: list[str], config_dir: str | None) -> list[str]:
    found = list(files)
    if config_dir:
        found += sorted(str(p) for p in Path(config_dir).glob("*.conf"))
    for f in found:
        if not os.path.isfile(f):
            raise ConfigError(f"Configuration file {f} not found.")
    return found


def unknown_options(files: list[str]) -> list[str]:
    """Every `section.option` in the files that Glimpse does not know."""
    known = {(s, o.dest) for s, opts in SECTIONS.items() for o in opts}
    known |= {(s, o.name) for s, opts in SECTIONS.items() for o in opts}
    unknown: list[str] = []
    for f in files:
        parser = configparser.RawConfigParser(strict=False, interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        parser.read(f)
        for key in parser.defaults():
            if ("DEFAULT", key) not in known:
                unknown.append(f"[DEFAULT] {key}")
        for section in parser.sections():
            for key in parser.options(section):
                if key in parser.defaults():
                    continue
                if (section, key) not in known:
                    unknown.append(f"[{section}] {key}")
    return sorted(set(unknown))


def _find_policy_file(name: str, config_files: list[str]) -> str | None:
    """The operator's policy file: as given, or beside a configuration file (as oslo.policy looks)."""
    candidates = [Path(name)] + [Path(f).parent / name for f in config_files]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate.absolute())
    if name != "policy.yaml":  # the default name may be absent; a name the operator chose must exist
        raise ConfigError(f"Policy file {name} not found.")
    return None


def load_settings(
    config_files: list[str] | None = None,
    config_dir: str | None = None,
    overrides: dict[str, object] | None = None,
) -> Settings:
    """Read the operator's files, apply command-line overrides, return one Settings."""
    files = _config_files(config_files or [], config_dir)
    conf = _new_conf()
    try:
        conf(args=[], project="glimpse", default_config_files=files, default_config_dirs=[])
    except cfg.Error as exc:
        raise ConfigError(f"Invalid configuration: {exc}") from exc
    o = {k: v for k, v in (overrides or {}).items() if v is not None}
    data_dir = Path(str(o.get("data_dir") or conf.data_dir))
    database_url = conf.database.connection or f"sqlite:///{(data_dir / 'glimpse.db').absolute()}"
    datadir = conf.glance_store.filesystem_store_datadir or str(data_dir / "images")
    if "data_dir" in o and not conf.glance_store.filesystem_store_datadir:
        datadir = str(data_dir / "images")
    try:
        return Settings(
            bind_host=str(o.get("bind_host", conf.bind_host)),
            bind_port=int(o.get("bind_port", conf.bind_port)),  # type: ignore[call-overload]
            workers=int(o.get("workers", conf.workers)),  # type: ignore[call-overload]
            data_dir=data_dir,
            database_url=database_url,
            image_size_cap=conf.image_size_cap,
            user_storage_quota=parse_size(conf.user_storage_quota),
            image_property_quota=conf.image_property_quota,
            image_tag_quota=conf.image_tag_quota,
            image_member_quota=conf.image_member_quota,
            image_location_quota=conf.image_location_quota,
            limit_param_default=conf.limit_param_default,
            api_limit_max=conf.api_limit_max,
            show_image_direct_url=conf.show_image_direct_url,
            show_multiple_locations=conf.show_multiple_locations,
            hashing_algorithm=conf.hashing_algorithm,
            stores=tuple(conf.glance_store.stores),
            default_store=conf.glance_store.default_store,
            filesystem_store_datadir=Path(datadir),
            auth_flavor=(conf.paste_deploy.flavor or "").strip(),
            allow_insecure_noauth_bind=conf.allow_insecure_noauth_bind,
            enabled_import_methods=tuple(conf.enabled_import_methods),
            public_endpoint=conf.public_endpoint,
            policy_file=_find_policy_file(conf.oslo_policy.policy_file, files),
            keystone={opt.dest: conf.keystone_authtoken[opt.dest] for opt in AUTHTOKEN_OPTS},
            dashboard_secret_key=conf.dashboard.secret_key,
            unknown_options=tuple(unknown_options(files)),
        )
    except cfg.Error as exc:
        raise ConfigError(f"Invalid configuration: {exc}") from exc
