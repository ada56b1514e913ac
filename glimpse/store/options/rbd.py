"""The rbd store's options (glance_store's names)."""

from __future__ import annotations

from oslo_config import cfg

OPTS: list[cfg.Opt] = [
    cfg.StrOpt("rbd_store_pool", default="images", help="Ceph pool holding the images."),
    cfg.StrOpt("rbd_store_user", help="Ceph user (client.<user>) to connect as; empty for librados' default (admin)."),
    cfg.StrOpt(
        "rbd_store_ceph_conf",
        default="",
        help="ceph.conf to read (it names the monitors and the keyring); empty for librados' default search.",
    ),
    cfg.IntOpt(
        "rbd_store_chunk_size",
        default=8,
        min=1,
        help="MiB written at a time, and the RBD object size of new images; a power of two.",
    ),
    cfg.IntOpt(
        "rados_connect_timeout",
        default=-1,
        help="Seconds to wait when connecting to the cluster (client_mount_timeout); 0 or less keeps librados' "
        "default.",
    ),
    cfg.BoolOpt("rbd_thin_provisioning", default=False, help="Skip writing chunks that are all zeros."),
]
