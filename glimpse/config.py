"""Configuration: oslo.config options read from a glance-api.conf-style file.

The options keep Glance's names and sections so an operator's existing file works as-is.
`load_settings` turns them, once, into one typed `Settings` object that is passed down;
nothing else in Glimpse reads oslo.config.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from oslo_config import cfg, types
from oslo_policy import opts as policy_opts
from oslo_utils import strutils

from glimpse.auth.options import AUTHTOKEN_OPTS, PASTE_OPTS, split_flavor
from glimpse.cache.options import CACHE_OPTS
from glimpse.errors import ConfigError
from glimpse.formats.options import CONVERSION_OPTS, IMAGE_FORMAT_OPTS
from glimpse.log_options import LOG_OPTS, SHUTDOWN_OPTS, log_settings
from glimpse.logs import LogSettings
from glimpse.messaging.options import (
    NOTIFICATIONS_OPTS,
    NOTIFIER_DEFAULT_OPTS,
    NotificationSettings,
    notification_settings,
)
from glimpse.ops_options import (
    HEALTHCHECK_OPTS,
    METRICS_OPTS,
    HealthcheckConfig,
    MetricsConfig,
    healthcheck_config,
    metrics_config,
)
from glimpse.option_report import OptionReport, report_options
from glimpse.option_types import glance_list_opt
from glimpse.optvalues import as_int
from glimpse.sources.key_manager_options import BARBICAN_OPTS, KEY_MANAGER_OPTS
from glimpse.sources.options import (
    EGRESS_OPTS,
    GLANCE_DOWNLOAD_OPTS,
    GLANCE_DOWNLOAD_PROPERTY_OPTS,
    IMPORT_FILTER_OPTS,
)
from glimpse.store.options import (
    BACKEND_OPTS,
    DRIVER_OPTS,
    GLANCE_STORE_OPTS,
    RESERVED_STORES,
    BackendConfig,
    configured_backends,
)
from glimpse.web_options import CORS_OPTS, DASHBOARD_OPTS, OSLO_MIDDLEWARE_OPTS

TIB = 1024**4

DEFAULT_OPTS: list[cfg.Opt] = [
    cfg.HostAddressOpt(
        "bind_host",
        default="127.0.0.1",
        help="Address the API listens on (Glimpse's own; Glance 33 is served by a WSGI server).",
    ),
    cfg.PortOpt("bind_port", default=9292, help="Port the API listens on (Glimpse's own)."),
    cfg.IntOpt("workers", default=1, min=1, help="Number of API worker processes (Glimpse's own)."),
    cfg.IntOpt("image_size_cap", default=TIB, min=1, max=9223372036854775808, help="Largest image accepted, in bytes."),
    cfg.StrOpt(
        "user_storage_quota",
        default="0",
        help="Bytes of image data each project may store (units B, KB, MB, GB, TB allowed); 0 is unlimited.",
    ),
    cfg.IntOpt("image_property_quota", default=128, help="Extra properties per image; negative is unlimited."),
    cfg.IntOpt("image_tag_quota", default=128, help="Tags per image; negative is unlimited."),
    cfg.IntOpt(
        "image_property_value_max_length",
        default=65535,
        min=1,
        help="Longest value of an extra image property, in characters (Glimpse's own; Glance has no cap).",
    ),
    cfg.IntOpt(
        "max_header_line",
        default=16384,
        min=256,
        help="Longest request header line (and request URL), in bytes (Glimpse's own; Glance before 33 had it for its "
        "eventlet server).",
    ),
    cfg.IntOpt("image_member_quota", default=128, help="Members per image; negative is unlimited."),
    cfg.IntOpt("image_location_quota", default=10, help="Locations per image; negative is unlimited."),
    cfg.IntOpt("limit_param_default", default=25, min=1, help="Page size when a list names no limit."),
    cfg.IntOpt("api_limit_max", default=1000, min=1, help="Largest page size a list may ask for."),
    cfg.BoolOpt("show_image_direct_url", default=False, help="Show the image's direct_url."),
    cfg.BoolOpt("show_multiple_locations", default=False, help="Show the image's locations."),
    cfg.StrOpt("hashing_algorithm", default="sha512", help="Algorithm of os_hash_value."),
    cfg.StrOpt(
        "data_dir", default="glimpse-data", help="Folder for the embedded database and image files (Glimpse's own)."
    ),
    cfg.BoolOpt(
        "allow_insecure_noauth_bind",
        default=False,
        help="Allow binding a non-loopback address without authentication (Glimpse's own).",
    ),
    glance_list_opt(
        "enabled_import_methods",
        types.String(quotes=True, choices=["glance-direct", "web-download", "copy-image", "glance-download"]),
        default=["glance-direct", "web-download", "copy-image"],
        help="Interoperable import methods offered. Glance's form is [glance-direct,copy-image]; Glimpse also reads "
        "the list without brackets.",
    ),
    cfg.StrOpt("public_endpoint", help="Public URL of the API, used in the versions document."),
    cfg.IntOpt(
        "upload_heartbeat_timeout",
        default=120,
        min=5,
        help="Seconds without data after which another process treats an upload as abandoned (Glimpse's own).",
    ),
    cfg.IntOpt(
        "data_transfer_threads",
        default=100,
        min=1,
        help="Threads image data uploads and downloads may hold at once, apart from the threads metadata requests "
        "use: slow transfers past this number wait, and never leave the rest of the API without threads "
        "(Glimpse's own).",
    ),
    cfg.FloatOpt(
        "task_heartbeat_interval",
        default=5.0,
        min=0.1,
        help="Seconds between the heartbeats of a running import, copy or glance-download task (Glimpse's own).",
    ),
    cfg.FloatOpt(
        "task_stale_after",
        default=60.0,
        min=1.0,
        help="Seconds without a heartbeat after which another process takes a task over (or, for a "
        "glance-download, fails it); keep it well above task_heartbeat_interval (Glimpse's own).",
    ),
    cfg.IntOpt(
        "import_step_timeout",
        default=3600,
        min=1,
        help="Seconds one step of an import (download, conversion, writing to a store) may take (Glimpse's own).",
    ),
    cfg.StrOpt(
        "node_staging_uri",
        help="file:// folder where staged and importing data waits (default <data_dir>/staging); "
        "with several API nodes, a folder they all share. Glance's default is file:///tmp/staging/; Glimpse keeps "
        "staged data beside its other data on purpose.",
    ),
    cfg.BoolOpt(
        "delayed_delete",
        default=False,
        help="Deleted images go to pending_delete with their data kept until `glimpse scrub` removes it (after "
        "scrub_time); `glimpse scrub --restore IMAGE` brings one back meanwhile.",
    ),
    cfg.IntOpt("scrub_time", default=0, min=0, help="Seconds an image stays pending_delete before it is scrubbed."),
    cfg.IntOpt("scrub_pool_size", default=1, min=1, help="Images one scrubber scrubs at once."),
    cfg.IntOpt("wakeup_time", default=300, min=0, help="Seconds between the runs of `glimpse scrub --daemon`."),
    cfg.BoolOpt(
        "use_keystone_limits",
        default=False,
        help="Take per-project limits from Keystone's unified limits ([oslo_limit]) instead of Glimpse's own.",
    ),
    cfg.StrOpt(
        "property_protection_file",
        help="INI file of property protections: sections are regular expressions over extra-property names, each "
        "with create, read, update and delete rules. Unset: properties are not protected. A file that is missing "
        "or invalid stops the service from starting.",
    ),
    cfg.StrOpt(
        "property_protection_rule_format",
        default="roles",
        choices=("roles", "policies"),
        help="How property_protection_file names who may act: roles (comma-separated roles, @ everyone, ! nobody) "
        "or policies (one rule of the policy file per operation).",
    ),
    cfg.DictOpt(
        "enabled_backends",
        help="Multi-store: store id -> store type (file, http, s3, swift, rbd), e.g. 'fast:s3, reliable:file'. "
        "Each store id has its own section with the driver's options, store_description and weight.",
    ),
]
DATABASE_OPTS: list[cfg.Opt] = [
    cfg.StrOpt("connection", secret=True, help="SQLAlchemy URL of the database."),
]
IMPORT_OPTS: list[cfg.Opt] = [
    glance_list_opt(
        "image_import_plugins",
        types.String(quotes=True),
        default=[],
        help="Import plugins, in order: image_decompression, image_conversion, inject_image_metadata.",
    ),
]
INJECT_OPTS: list[cfg.Opt] = [
    cfg.DictOpt("inject", default={}, help="Properties the inject_image_metadata plugin sets on imported images."),
    cfg.ListOpt("ignore_user_roles", default=["admin"], help="Roles whose imports get no injected properties."),
]
TASKFLOW_OPTS: list[cfg.Opt] = [
    cfg.IntOpt("max_workers", default=10, min=1, help="Imports each API process runs at once."),
]
SECTIONS: dict[str, list[cfg.Opt]] = {
    "DEFAULT": DEFAULT_OPTS + CACHE_OPTS + LOG_OPTS + SHUTDOWN_OPTS + NOTIFIER_DEFAULT_OPTS,
    "oslo_messaging_notifications": NOTIFICATIONS_OPTS,
    "database": DATABASE_OPTS,
    "glance_store": GLANCE_STORE_OPTS,
    "paste_deploy": PASTE_OPTS,
    "keystone_authtoken": AUTHTOKEN_OPTS,
    "image_format": IMAGE_FORMAT_OPTS,
    "import_filtering_opts": IMPORT_FILTER_OPTS,
    "egress": EGRESS_OPTS,
    "image_import_opts": IMPORT_OPTS,
    "image_conversion": CONVERSION_OPTS,
    "inject_metadata_properties": INJECT_OPTS,
    "glance_download_opts": GLANCE_DOWNLOAD_OPTS,
    "glance_download_properties": GLANCE_DOWNLOAD_PROPERTY_OPTS,
    "taskflow_executor": TASKFLOW_OPTS,
    "dashboard": DASHBOARD_OPTS,
    "oslo_middleware": OSLO_MIDDLEWARE_OPTS,
    "cors": CORS_OPTS,
    "key_manager": KEY_MANAGER_OPTS,
    "barbican": BARBICAN_OPTS,
    "healthcheck": HEALTHCHECK_OPTS,
    "metrics": METRICS_OPTS,
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
    image_property_value_max_length: int = 65535
    max_header_line: int = 16384
    max_request_body_size: int = 114688
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
    # Every configured store; in single-store mode one per type of `stores`, its id being the type.
    backends: tuple[BackendConfig, ...] = ()
    default_backend: str = "file"
    multi_store: bool = False
    auth_flavor: str = ""
    allow_insecure_noauth_bind: bool = False
    enabled_import_methods: tuple[str, ...] = ("glance-direct", "web-download", "copy-image")
    public_endpoint: str | None = None
    policy_file: str | None = None
    property_protection_file: str | None = None  # found (absolute), or None when protections are off
    property_protection_rule_format: str = "roles"
    keystone: dict[str, object] = field(default_factory=dict)
    # [key_manager] and [barbican], for castellan: where the certificates of signed images come from.
    key_manager: dict[str, dict[str, object]] = field(default_factory=dict)
    use_keystone_limits: bool = False
    delayed_delete: bool = False
    scrub_time: int = 0
    scrub_pool_size: int = 1
    wakeup_time: int = 300
    disk_formats: tuple[str, ...] = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
    container_formats: tuple[str, ...] = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
    require_image_format_match: bool = True
    vmdk_allowed_types: tuple[str, ...] = ("streamOptimized", "monolithicSparse")
    gpt_safety_checks_nonfatal: tuple[str, ...] = ()
    staging_dir: Path = Path("glimpse-data/staging")
    upload_heartbeat_timeout: int = 120
    data_transfer_threads: int = 100
    task_heartbeat_interval: float = 5.0
    task_stale_after: float = 60.0
    import_step_timeout: int = 3600
    import_max_workers: int = 10
    import_filter: dict[str, object] = field(default_factory=dict)
    egress: dict[str, object] = field(default_factory=dict)
    cors: dict[str, object] = field(default_factory=dict)  # [cors], as oslo.middleware reads it
    import_plugins: tuple[str, ...] = ()
    conversion_format: str = "raw"
    qemu_img_memory_limit: int = 1024  # MiB
    qemu_img_cpu_time_limit: int = 1800  # seconds
    inject_properties: dict[str, str] = field(default_factory=dict)
    inject_ignore_roles: tuple[str, ...] = ("admin",)
    remote_endpoints: dict[str, str] = field(default_factory=dict)
    download_properties: tuple[str, ...] = ("hw_", "trait:", "os_distro", "os_secure_boot", "os_type")
    config_files: tuple[str, ...] = ()
    dashboard_secret_key: str | None = None
    healthcheck: HealthcheckConfig = field(default_factory=HealthcheckConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    image_cache: CacheSettings | None = None  # None: image_cache_dir unset, no cache
    logging: LogSettings = field(default_factory=LogSettings)
    graceful_shutdown_timeout: int = 60
    overrides: dict[str, object] = field(default_factory=dict)  # the command line's, kept for SIGHUP's re-read
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    unknown_options: tuple[str, ...] = field(default=())
    no_effect_options: tuple[str, ...] = field(default=())  # Glance's, accepted without effect

    @property
    def embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")


@dataclass(frozen=True)
class CacheSettings:
    directory: Path
    driver: str = "centralized_db"  # Glance's name; centralized_db also records the node's copies in the database
    node_url: str | None = None  # worker_self_reference_url: the node's name in those records
    sqlite_db: str = "cache.db"
    max_size: int = 10 * 1024**3
    stall_time: int = 86400
    prefetcher_interval: int = 300
    serve_downloads: bool = False  # [paste_deploy] flavor names Glance's cache pipeline


def _cache_settings(conf: cfg.ConfigOpts, cache_flavors: tuple[str, ...]) -> CacheSettings | None:
    if not conf.image_cache_dir:
        return None
    return CacheSettings(
        directory=Path(conf.image_cache_dir),
        driver=conf.image_cache_driver.lower(),
        node_url=conf.worker_self_reference_url or None,
        sqlite_db=conf.image_cache_sqlite_db,
        max_size=conf.image_cache_max_size,
        stall_time=conf.image_cache_stall_time,
        prefetcher_interval=conf.cache_prefetcher_interval,
        serve_downloads=bool(cache_flavors),
    )


# The shape Glance accepts for user_storage_quota (a whole number, optionally B, KB, MB, GB or TB, each a power of
# 1024); Glimpse also takes the unit in any case and spaces around it. oslo.utils does the arithmetic.
_SIZE_SHAPE = re.compile(r"^\d+([KMGT]?B)?$")


def parse_size(text: str) -> int:
    """'10GB' -> bytes, as Glance's user_storage_quota accepts."""
    compact = "".join(text.split()).upper()
    if not _SIZE_SHAPE.match(compact):
        raise ConfigError(f"Invalid size {text!r}: use a number with an optional unit B, KB, MB, GB or TB.")
    return int(strutils.string_to_bytes(compact if compact.endswith("B") else compact + "B", "IEC", return_int=True))


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


def _store_sections(backends: dict[str, str] | None) -> dict[str, list[cfg.Opt]]:
    sections = {store_id: DRIVER_OPTS["file"] + BACKEND_OPTS for store_id in RESERVED_STORES}
    for store_id, kind in (backends or {}).items():
        sections[store_id] = DRIVER_OPTS.get(kind, []) + BACKEND_OPTS
    return sections


def option_report(
    files: list[str], backends: dict[str, str] | None = None, notifying: bool = False
) -> OptionReport:
    """The options in the files Glimpse does not read; backends: store id -> type; notifying: oslo.messaging
    reads [oslo_messaging_rabbit] (notifications are on)."""
    stores = _store_sections(backends)
    every_driver = {o.dest for opts in DRIVER_OPTS.values() for o in opts}
    delegated = ("oslo_messaging_rabbit",) if notifying else ()
    return report_options(files, {**SECTIONS, **stores}, stores, every_driver, delegated)


def unknown_options(files: list[str], backends: dict[str, str] | None = None) -> list[str]:
    """Every `[section] option` in the files that neither Glimpse nor Glance knows; backends: store id -> type."""
    return list(option_report(files, backends).unknown)


def _staging_dir(uri: str | None, data_dir: Path) -> Path:
    if not uri:
        return data_dir / "staging"
    if not uri.startswith("file://"):
        raise ConfigError(f"node_staging_uri {uri} must be a file:// URI.")
    return Path(uri[len("file://") :])


def _find_policy_file(name: str, config_files: list[str]) -> str | None:
    """The operator's policy file: as given, or beside a configuration file (as oslo.policy looks)."""
    candidates = [Path(name)] + [Path(f).parent / name for f in config_files]
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate.absolute())
    if name != "policy.yaml":  # the default name may be absent; a name the operator chose must exist
        raise ConfigError(f"Policy file {name} not found.")
    return None


def _key_manager_options(conf: cfg.ConfigOpts) -> dict[str, dict[str, object]]:
    barbican: dict[str, object] = {o.dest: conf.barbican[o.dest] for o in BARBICAN_OPTS}
    if not barbican["auth_endpoint"]:  # the Keystone the service already validates tokens at
        keystone = conf.keystone_authtoken.www_authenticate_uri or conf.keystone_authtoken.auth_url
        if keystone:
            keystone = str(keystone).rstrip("/")
            barbican["auth_endpoint"] = keystone if keystone.endswith(("/v3", "/v3.0")) else keystone + "/v3"
    return {"key_manager": {"backend": conf.key_manager.backend}, "barbican": barbican}


def _find_protection_file(name: str | None, config_files: list[str]) -> str | None:
    """property_protection_file: as given, or beside a configuration file (as oslo.config's find_file looks)."""
    if not name:
        return None
    for candidate in [Path(name)] + [Path(f).parent / name for f in config_files]:
        if candidate.is_file():
            return str(candidate.absolute())
    raise ConfigError(f"property_protection_file {name} not found: the service does not start without it.")


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
        backends, default_backend, multi_store = configured_backends(conf, data_dir, datadir, SECTIONS)
        enabled = {b.id: b.type for b in backends} if multi_store else {}
        notifications = notification_settings(conf)
        report = option_report(files, enabled, notifications.enabled)
        auth_flavor, cache_flavors = split_flavor(conf.paste_deploy.flavor)
        image_cache = _cache_settings(conf, cache_flavors)
        # Glance's cache pipeline without image_cache_dir: no cache to serve from, said once at start-up.
        flavor_without_cache = () if image_cache else tuple(f"{p} (no image_cache_dir)" for p in cache_flavors)
        return Settings(
            bind_host=str(o.get("bind_host", conf.bind_host)),
            bind_port=as_int(o.get("bind_port", conf.bind_port)),
            workers=as_int(o.get("workers", conf.workers)),
            data_dir=data_dir,
            database_url=database_url,
            image_size_cap=conf.image_size_cap,
            user_storage_quota=parse_size(conf.user_storage_quota),
            image_property_quota=conf.image_property_quota,
            image_tag_quota=conf.image_tag_quota,
            image_property_value_max_length=conf.image_property_value_max_length,
            max_header_line=conf.max_header_line,
            max_request_body_size=conf.oslo_middleware.max_request_body_size,
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
            backends=backends,
            default_backend=default_backend,
            multi_store=multi_store,
            auth_flavor=auth_flavor,
            allow_insecure_noauth_bind=conf.allow_insecure_noauth_bind,
            enabled_import_methods=tuple(conf.enabled_import_methods),
            public_endpoint=conf.public_endpoint,
            policy_file=_find_policy_file(conf.oslo_policy.policy_file, files),
            property_protection_file=_find_protection_file(conf.property_protection_file, files),
            property_protection_rule_format=conf.property_protection_rule_format,
            keystone={opt.dest: conf.keystone_authtoken[opt.dest] for opt in AUTHTOKEN_OPTS},
            key_manager=_key_manager_options(conf),
            use_keystone_limits=conf.use_keystone_limits,
            delayed_delete=conf.delayed_delete,
            scrub_time=conf.scrub_time,
            scrub_pool_size=conf.scrub_pool_size,
            wakeup_time=conf.wakeup_time,
            disk_formats=tuple(conf.image_format.disk_formats),
            container_formats=tuple(conf.image_format.container_formats),
            require_image_format_match=conf.image_format.require_image_format_match,
            vmdk_allowed_types=tuple(conf.image_format.vmdk_allowed_types),
            gpt_safety_checks_nonfatal=tuple(conf.image_format.gpt_safety_checks_nonfatal),
            staging_dir=_staging_dir(conf.node_staging_uri, data_dir),
            upload_heartbeat_timeout=conf.upload_heartbeat_timeout,
            data_transfer_threads=conf.data_transfer_threads,
            task_heartbeat_interval=conf.task_heartbeat_interval,
            task_stale_after=max(conf.task_stale_after, 2 * conf.task_heartbeat_interval),
            import_step_timeout=conf.import_step_timeout,
            import_max_workers=conf.taskflow_executor.max_workers,
            import_filter={o.dest: conf.import_filtering_opts[o.dest] for o in IMPORT_FILTER_OPTS},
            egress={o.dest: conf.egress[o.dest] for o in EGRESS_OPTS},
            cors={o.dest: conf.cors[o.dest] for o in CORS_OPTS},
            import_plugins=tuple(conf.image_import_opts.image_import_plugins),
            conversion_format=conf.image_conversion.output_format,
            qemu_img_memory_limit=conf.image_conversion.qemu_img_memory_limit,
            qemu_img_cpu_time_limit=conf.image_conversion.qemu_img_cpu_time_limit,
            inject_properties=dict(conf.inject_metadata_properties.inject),
            inject_ignore_roles=tuple(conf.inject_metadata_properties.ignore_user_roles),
            remote_endpoints=dict(conf.glance_download_opts.region_endpoints),
            download_properties=tuple(conf.glance_download_properties.extra_properties),
            config_files=tuple(files),
            dashboard_secret_key=conf.dashboard.secret_key,
            healthcheck=healthcheck_config(conf.healthcheck),
            metrics=metrics_config(conf.metrics),
            logging=log_settings({opt.dest: conf[opt.dest] for opt in LOG_OPTS}, o),
            graceful_shutdown_timeout=conf.graceful_shutdown_timeout,
            overrides=o,
            notifications=notifications,
            unknown_options=report.unknown,
            image_cache=image_cache,
            no_effect_options=report.no_effect + flavor_without_cache,
        )
    except cfg.Error as exc:
        raise ConfigError(f"Invalid configuration: {exc}") from exc
