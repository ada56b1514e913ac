"""Every store driver's options, the [glance_store] section, and the list of stores they configure.

As glance_store does, each driver declares its own options (glimpse/store/options/<type>.py); the
composition (glimpse/config.py) registers them: all of them in [glance_store] for the single-store mode,
and a driver's own in each store's section in the multi-store mode. These modules hold option
definitions only, so reading the configuration never imports a driver's library (boto3, swiftclient,
rados).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from oslo_config import cfg

from glimpse.errors import ConfigError
from glimpse.store.options import cinder, file, http, rbd, s3, swift, vmware

# Store type -> its driver's options, with glance_store's names.
DRIVER_OPTS: dict[str, list[cfg.Opt]] = {
    "file": file.OPTS,
    "http": http.OPTS,
    "s3": s3.OPTS,
    "swift": swift.OPTS,
    "rbd": rbd.OPTS,
    "vmware": vmware.OPTS,
    "cinder": cinder.OPTS,
}
# Options of every store's own section in the multi-store mode, whatever its driver.
BACKEND_OPTS: list[cfg.Opt] = [
    cfg.StrOpt("store_description", help="What /v2/info/stores says about this store."),
    cfg.IntOpt("weight", default=0, help="Locations in heavier stores are read first."),
]
# Glance's internal file stores; their sections may appear in an operator's file.
RESERVED_STORES = ("os_glance_staging_store", "os_glance_tasks_store")
# [glance_store]: the choice of stores, and (single-store mode) every driver's options.
GLANCE_STORE_OPTS: list[cfg.Opt] = [
    cfg.ListOpt("stores", default=["file", "http"], help="Store types enabled (single-store mode)."),
    cfg.StrOpt(
        "default_store",
        default="file",
        # glance_store's choices (store schemes); Glimpse's stores are file, http, s3, swift, rbd, cinder and vmware
        # (vsphere).
        choices=[
            *("file", "filesystem", "http", "https", "swift", "swift+http", "swift+https", "swift+config"),
            *("rbd", "cinder", "vsphere", "s3"),
        ],
        help="Store type new data goes to (single-store mode).",
    ),
    cfg.StrOpt("default_backend", help="Store id new data goes to (multi-store mode)."),
    *(opt for opts in DRIVER_OPTS.values() for opt in opts),
]


@dataclass(frozen=True)
class BackendConfig:
    """One store: its id, driver type and the driver's options (glance_store names, sizes in MiB)."""

    id: str
    type: str
    description: str = ""
    weight: int = 0
    options: dict[str, object] = field(default_factory=dict)


def _driver_options(group: cfg.ConfigOpts.GroupAttr, kind: str) -> dict[str, object]:
    return {opt.dest: group[opt.dest] for opt in DRIVER_OPTS.get(kind, [])}


def configured_backends(
    conf: cfg.ConfigOpts, data_dir: Path, datadir: str, sections: Collection[str]
) -> tuple[tuple[BackendConfig, ...], str, bool]:
    """The configured stores, the default store id, and whether this is the multi-store mode.

    `sections` are the configuration's own sections, which no store id may take."""
    enabled: dict[str, str] = {k.strip(): v.strip() for k, v in (conf.enabled_backends or {}).items()}
    if not enabled:
        legacy = []
        for kind in conf.glance_store.stores:
            options = _driver_options(conf.glance_store, kind)
            if kind == "file":
                options["filesystem_store_datadir"] = datadir
            legacy.append(BackendConfig(id=kind, type=kind, description=f"{kind} store", options=options))
        # default_store takes Glance's scheme names; the vmware store's is vsphere.
        default = {"vsphere": "vmware"}.get(conf.glance_store.default_store, conf.glance_store.default_store)
        return tuple(legacy), default, False
    backends = []
    for store_id, kind in enabled.items():
        if store_id.startswith("os_glance_") or store_id in sections:
            raise ConfigError(f"enabled_backends: '{store_id}' is reserved and cannot name a store.")
        if kind not in DRIVER_OPTS:
            raise ConfigError(
                f"enabled_backends: store {store_id} has type '{kind}', which this build does not have "
                f"(available: {', '.join(DRIVER_OPTS)})."
            )
        conf.register_opts(DRIVER_OPTS[kind] + BACKEND_OPTS, group=store_id)
        group = conf[store_id]
        options = _driver_options(group, kind)
        if kind == "file" and not options["filesystem_store_datadir"]:
            options["filesystem_store_datadir"] = str(data_dir / "images" / store_id)
        description = group.store_description or f"{kind} store {store_id}"
        backends.append(BackendConfig(store_id, kind, description, group.weight, options))
    default = conf.glance_store.default_backend
    if not default or default not in enabled:
        raise ConfigError(
            f"[glance_store] default_backend = {default or '(unset)'}: it must be one of the enabled_backends "
            f"({', '.join(enabled)})."
        )
    return tuple(backends), default, True
