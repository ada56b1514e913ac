"""What `glimpse serve` says when it starts: where the API and the dashboard answer, who may call them,
which database and stores hold the data, how many workers, which policy file, where the log goes."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from glimpse.config import Settings
from glimpse.logsafe import redact_url

# Per store type, the options that say where its data lives.
WHERE = {
    "file": ("filesystem_store_datadir",),
    "s3": ("s3_store_host", "s3_store_bucket"),
    "swift": ("swift_store_auth_address", "swift_store_container"),
    "rbd": ("rbd_store_ceph_conf", "rbd_store_pool"),
    "cinder": ("cinder_volume_type",),
}


_PASSWORD = re.compile(r"(://[^/@:]*:)[^/]*@")


def database(url: str) -> str:
    """The database URL with its password masked (a sqlite:////path stays exactly as written)."""
    return _PASSWORD.sub(r"\1***@", url)


def _where(kind: str, options: Mapping[str, object]) -> str:
    if kind == "http":
        return "read-only, images' http(s) locations"
    values = [str(options[k]) for k in WHERE.get(kind, ()) if options.get(k)]
    if kind == "file" and values:
        values = [str(Path(values[0]).absolute())]
    return redact_url(" ".join(values)) if values else "-"


def _stores(settings: Settings) -> list[str]:
    if settings.backends:
        default = settings.default_backend
        found = [(b.id, b.type, b.options) for b in settings.backends]
    else:
        default = settings.default_store
        datadir: dict[str, object] = {"filesystem_store_datadir": settings.filesystem_store_datadir}
        found = [(kind, kind, datadir) for kind in settings.stores]
    return [
        f"  store {store_id} ({kind}): {_where(kind, options)}{' [default]' if store_id == default else ''}"
        for store_id, kind, options in found
    ]


def lines(settings: Settings, dashboard_path: str) -> list[str]:
    host = f"[{settings.bind_host}]" if ":" in settings.bind_host else settings.bind_host
    base = f"http://{host}:{settings.bind_port}"
    auth = "keystone (X-Auth-Token)" if settings.auth_flavor == "keystone" else "none (noauth: X-Roles headers)"
    return [
        f"Glimpse serving the Images API v2 on {base}" + (f" (public {settings.public_endpoint})"
                                                            if settings.public_endpoint else ""),
        f"  dashboard: {base}{dashboard_path}",
        f"  authentication: {auth}",
        f"  database: {database(settings.database_url)}",
        *_stores(settings),
        f"  workers: {settings.workers}; graceful_shutdown_timeout: {settings.graceful_shutdown_timeout} s",
        f"  policy file: {settings.policy_file or 'none (built-in defaults)'}",
        f"  log: {settings.logging.destination()}",
    ]  # fmt: skip
