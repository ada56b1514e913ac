"""Configuration: oslo.config options read from a glance-api.conf-style file.

The options keep Glance's names and sections so an operator's existing file works as-is. Each feature declares
its options (and the typed settings they give) beside itself: default_options.py ([DEFAULT]), db/options.py,
store/options/, auth/options.py, cache/options.py, import_options.py, sources/, formats/options.py, web_options.py,
log_options.py, ops_options.py, messaging/options.py, audit_options.py. This module gathers them into SECTIONS,
and `load_settings` turns them, once, into one typed `Settings` object that is passed down; nothing else in Glimpse
reads oslo.config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from oslo_config import cfg
from oslo_policy import opts as policy_opts

from glimpse.audit_options import AUDIT_OPTS, RETENTION_OPTS, AuditSettings, audit_settings
from glimpse.auth.options import (
    AUTHTOKEN_OPTS,
    PASTE_OPTS,
    find_policy_file,
    find_protection_file,
    policy_options,
    split_flavor,
)
from glimpse.cache.options import CACHE_OPTS, CacheSettings, cache_settings
from glimpse.db.options import DATABASE_OPTS, database_url
from glimpse.default_options import DEFAULT_OPTS, TIB, parse_size
from glimpse.errors import ConfigError
from glimpse.formats.options import CONVERSION_OPTS, IMAGE_FORMAT_OPTS
from glimpse.import_options import IMPORT_OPTS, INJECT_OPTS, TASKFLOW_OPTS, staging_dir
from glimpse.lifecycle_options import RECYCLE_BIN_OPTS
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
from glimpse.optvalues import as_int
from glimpse.sources.key_manager_options import BARBICAN_OPTS, KEY_MANAGER_OPTS, key_manager_options
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
from glimpse.webhook_options import WEBHOOK_OPTS, WebhookSettings, webhook_settings

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
    "audit": AUDIT_OPTS,
    "retention": RETENTION_OPTS,
    "webhooks": WEBHOOK_OPTS,
    "recycle_bin": RECYCLE_BIN_OPTS,
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
    # The rest of [oslo_policy] (remote_timeout, policy_dirs, enforce_new_defaults, ...), for the enforcer.
    policy_options: dict[str, object] = field(default_factory=dict)
    property_protection_file: str | None = None  # found (absolute), or None when protections are off
    property_protection_rule_format: str = "roles"
    keystone: dict[str, object] = field(default_factory=dict)
    # [key_manager] and [barbican], for castellan: where the certificates of signed images come from.
    key_manager: dict[str, dict[str, object]] = field(default_factory=dict)
    use_keystone_limits: bool = False
    delayed_delete: bool = False
    deduplicate_image_data: bool = True
    scrub_time: int = 0
    scrub_pool_size: int = 1
    wakeup_time: int = 300
    bin_retention: int = 0  # [recycle_bin] retention_period, seconds
    disk_formats: tuple[str, ...] = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
    container_formats: tuple[str, ...] = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
    require_image_format_match: bool = True
    vmdk_allowed_types: tuple[str, ...] = ("streamOptimized", "monolithicSparse")
    gpt_safety_checks_nonfatal: tuple[str, ...] = ()
    staging_dir: Path = Path("glimpse-data/staging")
    upload_heartbeat_timeout: int = 120
    resumable_upload_expiration: float = 24.0  # hours
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
    dashboard_redis_url: str | None = None  # [dashboard] session_backend = redis: its redis_url
    healthcheck: HealthcheckConfig = field(default_factory=HealthcheckConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    image_cache: CacheSettings | None = None  # None: image_cache_dir unset, no cache
    logging: LogSettings = field(default_factory=LogSettings)
    graceful_shutdown_timeout: int = 60
    overrides: dict[str, object] = field(default_factory=dict)  # the command line's, kept for SIGHUP's re-read
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    unknown_options: tuple[str, ...] = field(default=())
    no_effect_options: tuple[str, ...] = field(default=())  # Glance's, accepted without effect

    @property
    def embedded_database(self) -> bool:
        return self.database_url.startswith("sqlite")


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


def option_report(files: list[str], backends: dict[str, str] | None = None, notifying: bool = False) -> OptionReport:
    """The options in the files Glimpse does not read; backends: store id -> type; notifying: oslo.messaging
    reads [oslo_messaging_rabbit] (notifications are on)."""
    stores = _store_sections(backends)
    every_driver = {o.dest for opts in DRIVER_OPTS.values() for o in opts}
    delegated = ("oslo_messaging_rabbit",) if notifying else ()
    return report_options(files, {**SECTIONS, **stores}, stores, every_driver, delegated)


def unknown_options(files: list[str], backends: dict[str, str] | None = None) -> list[str]:
    """Every `[section] option` in the files that neither Glimpse nor Glance knows; backends: store id -> type."""
    return list(option_report(files, backends).unknown)


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
    datadir = conf.glance_store.filesystem_store_datadir or str(data_dir / "images")
    if "data_dir" in o and not conf.glance_store.filesystem_store_datadir:
        datadir = str(data_dir / "images")
    try:
        backends, default_backend, multi_store = configured_backends(conf, data_dir, datadir, SECTIONS)
        enabled = {b.id: b.type for b in backends} if multi_store else {}
        notifications = notification_settings(conf)
        report = option_report(files, enabled, notifications.enabled)
        auth_flavor, cache_flavors = split_flavor(conf.paste_deploy.flavor)
        image_cache = cache_settings(conf, cache_flavors)
        # Glance's cache pipeline without image_cache_dir: no cache to serve from, said once at start-up.
        flavor_without_cache = () if image_cache else tuple(f"{p} (no image_cache_dir)" for p in cache_flavors)
        return Settings(
            bind_host=str(o.get("bind_host", conf.bind_host)),
            bind_port=as_int(o.get("bind_port", conf.bind_port)),
            workers=as_int(o.get("workers", conf.workers)),
            data_dir=data_dir,
            database_url=database_url(conf.database.connection, data_dir),
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
            policy_file=find_policy_file(conf.oslo_policy.policy_file, files),
            policy_options=policy_options(conf, files),
            property_protection_file=find_protection_file(conf.property_protection_file, files),
            property_protection_rule_format=conf.property_protection_rule_format,
            keystone={opt.dest: conf.keystone_authtoken[opt.dest] for opt in AUTHTOKEN_OPTS},
            key_manager=key_manager_options(conf),
            use_keystone_limits=conf.use_keystone_limits,
            delayed_delete=conf.delayed_delete,
            deduplicate_image_data=deduplicating(conf),
            scrub_time=conf.scrub_time,
            scrub_pool_size=conf.scrub_pool_size,
            wakeup_time=conf.wakeup_time,
            bin_retention=conf.recycle_bin.retention_period,
            disk_formats=tuple(conf.image_format.disk_formats),
            container_formats=tuple(conf.image_format.container_formats),
            require_image_format_match=conf.image_format.require_image_format_match,
            vmdk_allowed_types=tuple(conf.image_format.vmdk_allowed_types),
            gpt_safety_checks_nonfatal=tuple(conf.image_format.gpt_safety_checks_nonfatal),
            staging_dir=staging_dir(conf.node_staging_uri, data_dir),
            upload_heartbeat_timeout=conf.upload_heartbeat_timeout,
            resumable_upload_expiration=conf.resumable_upload_expiration,
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
            dashboard_redis_url=dashboard_redis_url(conf.dashboard),
            healthcheck=healthcheck_config(conf.healthcheck),
            metrics=metrics_config(conf.metrics),
            logging=log_settings({opt.dest: conf[opt.dest] for opt in LOG_OPTS}, o),
            graceful_shutdown_timeout=conf.graceful_shutdown_timeout,
            overrides=o,
            notifications=notifications,
            audit=audit_settings(conf),
            webhooks=webhook_settings(conf.webhooks),
            unknown_options=report.unknown,
            image_cache=image_cache,
            no_effect_options=report.no_effect + flavor_without_cache,
        )
    except cfg.Error as exc:
        raise ConfigError(f"Invalid configuration: {exc}") from exc


def dashboard_redis_url(dashboard: cfg.ConfigOpts.GroupAttr) -> str | None:
    if dashboard.session_backend != "redis":
        return None
    if not dashboard.redis_url:
        raise ConfigError("[dashboard] session_backend = redis needs [dashboard] redis_url.")
    return str(dashboard.redis_url)


def deduplicating(conf: cfg.ConfigOpts) -> bool:
    """deduplicate_image_data as set, or when unset: on unless the operator shows image locations
    (show_image_direct_url, show_multiple_locations), which shared data's names would turn into a hint of other
    projects' data."""
    chosen: bool | None = conf.deduplicate_image_data
    if chosen is not None:
        return chosen
    return not (conf.show_image_direct_url or conf.show_multiple_locations)
