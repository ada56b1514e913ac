"""The file store's option (glance_store's name)."""

from __future__ import annotations

from oslo_config import cfg

OPTS: list[cfg.Opt] = [
    cfg.StrOpt("filesystem_store_datadir", help="Folder of the file store."),
]
