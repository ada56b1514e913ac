"""The file store's option (glance_store's name)."""

from __future__ import annotations

from oslo_config import cfg

OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "filesystem_store_datadir",
        help="Folder of the file store. Glance's default is /var/lib/glance/images; Glimpse's is <data_dir>/images "
        "on purpose, so that it runs without root.",
    ),
]
