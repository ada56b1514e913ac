"""Options of the operator's probes: [healthcheck] (oslo.middleware's names) and [metrics] (Glimpse's own).

config.py collects them with every other section; api/healthcheck.py and api/metrics.py read the typed
HealthcheckConfig and MetricsConfig from Settings.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from oslo_config import cfg

from glimpse.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Glance's paste pipeline serves /healthcheck with backends = disable_by_file and this file; an operator's drain
# script that touches it keeps working when Glimpse replaces Glance.
GLANCE_DISABLE_FILE = "/etc/glance/healthcheck_disable"
BACKENDS = ("disable_by_file", "disable_by_files_ports", "enable_by_files")

# oslo.middleware's options, in its section, with its names and types. `backends` and `disable_by_file_path`
# default to what Glance's glance-api-paste.ini sets (oslo.middleware's own defaults are empty).
HEALTHCHECK_OPTS: list[cfg.Opt] = [
    cfg.BoolOpt(
        "detailed",
        default=False,
        help="Give every caller the detailed view (each check's details, the database and every store checked, the "
        "process's threads); without it only an administrator asking /healthcheck?detailed=true gets it. It tells "
        "anyone who can reach the port about the service.",
    ),
    cfg.ListOpt("backends", default=["disable_by_file"], help=f"Checks of the simple view: {', '.join(BACKENDS)}."),
    cfg.StrOpt(
        "disable_by_file_path",
        default=GLANCE_DISABLE_FILE,
        help="While this file exists the node answers 503 DISABLED BY FILE (backend disable_by_file): a load "
        "balancer drains it.",
    ),
    cfg.ListOpt(
        "disable_by_file_paths",
        default=[],
        help='"port:path" items: the file that disables the service on that port (backend disable_by_files_ports).',
    ),
    cfg.ListOpt(
        "enable_by_file_paths",
        default=[],
        help="Files that must all exist for the node to be healthy (backend enable_by_files).",
    ),
    cfg.ListOpt(
        "allowed_source_ranges",
        default=[],
        help="Networks (CIDR) whose callers are answered; others get 404, as if there were no health check.",
    ),
    cfg.BoolOpt(
        "ignore_proxied_requests",
        default=False,
        help="Requests carrying X-Forwarded-* headers get 404, as if there were no health check.",
    ),
]

# Glimpse's own. Metrics are on, but served only to the machine itself until the operator names the networks of
# the Prometheus servers: route counts, store names and queue sizes describe the service to whoever reads them,
# and a scraper carries no Keystone token, so the peer's address is the only gate (X-Forwarded-For is not trusted).
METRICS_OPTS: list[cfg.Opt] = [
    cfg.BoolOpt(
        "enabled",
        default=True,
        help="Collect Prometheus metrics and serve them at `path`; false also removes the collecting (its cost).",
    ),
    cfg.StrOpt("path", default="/metrics", regex=r"^/[A-Za-z0-9._~/-]*$", help="Path of the metrics endpoint."),
    cfg.ListOpt(
        "allowed_source_ranges",
        default=["127.0.0.0/8", "::1/128"],
        help="Networks (CIDR) allowed to read the metrics; others get 403. The peer's address counts, not "
        "X-Forwarded-For: behind a proxy, list the proxy only if everything that reaches it may read them.",
    ),
]


def networks(values: list[str], option: str) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values if v.strip())
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


@dataclass(frozen=True)
class HealthcheckConfig:
    detailed: bool = False
    backends: tuple[str, ...] = ("disable_by_file",)
    disable_by_file_path: str | None = GLANCE_DISABLE_FILE
    disable_by_file_paths: tuple[tuple[int, str], ...] = ()  # (port, path)
    enable_by_file_paths: tuple[str, ...] = ()
    allowed_source_ranges: tuple[Network, ...] = ()
    ignore_proxied_requests: bool = False


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = True
    path: str = "/metrics"
    allowed_source_ranges: tuple[Network, ...] = (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


def _port_paths(values: list[str]) -> tuple[tuple[int, str], ...]:
    found = []
    for item in (v.strip() for v in values):
        if not item:
            continue
        port, sep, path = item.partition(":")
        if not sep or not port.strip().isdigit() or not path:
            raise ConfigError(f"[healthcheck] disable_by_file_paths: {item!r} is not 'port:path'.")
        found.append((int(port), path))
    return tuple(found)


def healthcheck_config(group: cfg.ConfigOpts.GroupAttr) -> HealthcheckConfig:
    backends = tuple(b.strip() for b in group.backends if b.strip())
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ConfigError(f"[healthcheck] backends: unknown {', '.join(unknown)}; known: {', '.join(BACKENDS)}.")
    if {"disable_by_file", "enable_by_files"} <= set(backends):
        raise ConfigError("[healthcheck] backends: disable_by_file and enable_by_files cannot be used together.")
    return HealthcheckConfig(
        detailed=group.detailed,
        backends=backends,
        disable_by_file_path=group.disable_by_file_path or None,
        disable_by_file_paths=_port_paths(group.disable_by_file_paths),
        enable_by_file_paths=tuple(p.strip() for p in group.enable_by_file_paths if p.strip()),
        allowed_source_ranges=networks(group.allowed_source_ranges, "[healthcheck] allowed_source_ranges"),
        ignore_proxied_requests=group.ignore_proxied_requests,
    )


def metrics_config(group: cfg.ConfigOpts.GroupAttr) -> MetricsConfig:
    path = group.path.rstrip("/") or "/"
    if path == "/" or path == "/healthcheck" or path.startswith(("/v2", "/dashboard", "/versions")):
        raise ConfigError(f"[metrics] path = {group.path} would hide part of the API: choose another path.")
    return MetricsConfig(
        enabled=group.enabled,
        path=path,
        allowed_source_ranges=networks(group.allowed_source_ranges, "[metrics] allowed_source_ranges"),
    )
