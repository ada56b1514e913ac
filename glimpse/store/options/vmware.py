"""The vmware store's options (glance_store's names)."""

from __future__ import annotations

from oslo_config import cfg

OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "vmware_server_host",
        help="Address of the vCenter or ESXi server: host, or host:port when not 443 (Glance takes a host only).",
    ),
    cfg.StrOpt("vmware_server_username", help="User logging in to the vSphere API."),
    cfg.StrOpt("vmware_server_password", secret=True, help="Password of vmware_server_username."),
    cfg.IntOpt(
        "vmware_api_retry_count",
        default=10,
        min=1,
        help="Attempts of a vSphere API call or a data transfer that failed on a connection error, and logins again "
        "after the session expired.",
    ),
    cfg.IntOpt(
        "vmware_task_poll_interval",
        default=5,
        min=1,
        help="Longest wait in seconds between two looks at a running vSphere task (Glimpse looks sooner at first).",
    ),
    cfg.StrOpt(
        "vmware_store_image_dir",
        default="/openstack_glance",
        help="Folder of the datastores holding the images.",
    ),
    cfg.BoolOpt(
        "vmware_insecure",
        default=False,
        deprecated_name="vmware_api_insecure",
        help="Do not verify the server's certificate (ignored when vmware_ca_file is set).",
    ),
    cfg.StrOpt("vmware_ca_file", help="CA bundle to verify the server's certificate with."),
    cfg.MultiStrOpt(
        "vmware_datastores",
        help="A datastore images may go to, as <datacenter path>:<datastore name>[:<weight>]; may be repeated. New "
        "data goes to the heaviest datastore with room for it (the one with the most free space among equals).",
    ),
]
