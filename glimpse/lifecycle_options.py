"""Options of the image catalogue's life ([recycle_bin], Glimpse's own: Glance has no recycle bin)."""

from __future__ import annotations

from oslo_config import cfg

RECYCLE_BIN_OPTS: list[cfg.Opt] = [
    cfg.IntOpt(
        "retention_period",
        default=0,
        min=0,
        max=2**31 - 1,
        help="Seconds a deleted image stays in the recycle bin (restorable by its owner, its data kept and counted "
        "in the quota) before `glimpse scrub` removes its data; 0: no bin, a delete is final (or delayed_delete "
        "applies). An administrator sets a project's own period with PUT /v2/recycle-bin/retention/{project_id} "
        "or `glimpse bin retention`. The period in force when an image is deleted is the one it keeps.",
    ),
]
