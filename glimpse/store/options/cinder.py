"""The cinder store's options (glance_store's names and defaults)."""

from __future__ import annotations

from oslo_config import cfg

OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "cinder_catalog_info",
        default="volumev3::publicURL",
        help="<service_type>:<service_name>:<interface> of the Block Storage endpoint in the store user's catalog.",
    ),
    cfg.StrOpt(
        "cinder_endpoint_template",
        help="The Block Storage endpoint to use instead of the catalog's; %%(tenant)s and %%(project_id)s are "
        "replaced by the store user's project id.",
    ),
    cfg.StrOpt(
        "cinder_os_region_name",
        deprecated_name="os_region_name",
        help="Region of the Block Storage endpoint in the catalog (any region when unset).",
    ),
    cfg.StrOpt("cinder_ca_certificates_file", help="CA bundle that verifies the Block Storage and Keystone HTTPS."),
    cfg.IntOpt("cinder_http_retries", min=0, default=3, help="Retries of a failed Block Storage API call."),
    cfg.IntOpt(
        "cinder_state_transition_timeout",
        min=0,
        default=300,
        help="Seconds to wait for a volume to leave a transitional state (creating, extending, deleting).",
    ),
    cfg.BoolOpt("cinder_api_insecure", default=False, help="Do not verify the Block Storage/Keystone certificates."),
    cfg.StrOpt("cinder_store_auth_address", help="Keystone URL of the user owning the image volumes."),
    cfg.StrOpt("cinder_store_user_name", help="User owning the image volumes."),
    cfg.StrOpt("cinder_store_user_domain_name", default="Default", help="Domain of cinder_store_user_name."),
    cfg.StrOpt("cinder_store_password", secret=True, help="Password of cinder_store_user_name."),
    cfg.StrOpt(
        "cinder_store_application_credential_id",
        help="Application credential to authenticate with instead of the password.",
    ),
    cfg.StrOpt(
        "cinder_store_application_credential_secret",
        secret=True,
        help="Secret of cinder_store_application_credential_id.",
    ),
    cfg.StrOpt("cinder_store_project_name", help="Project holding the image volumes."),
    cfg.StrOpt("cinder_store_project_domain_name", default="Default", help="Domain of cinder_store_project_name."),
    cfg.StrOpt(
        "rootwrap_config",
        default="/etc/glance/rootwrap.conf",
        help="rootwrap configuration for os-brick's privileged attachments (not used by rbd attachments).",
    ),
    cfg.StrOpt("cinder_volume_type", help="Volume type of new image volumes (Cinder's default type when unset)."),
    cfg.BoolOpt(
        "cinder_enforce_multipath",
        default=False,
        help="Refuse to attach without multipathd (sent to Cinder in the connector).",
    ),
    cfg.BoolOpt(
        "cinder_use_multipath", default=False, help="Attach through multipath (sent to Cinder in the connector)."
    ),
    cfg.StrOpt(
        "cinder_mount_point_base",
        default="/var/lib/glance/mnt",
        help="Where NFS volumes would be mounted (not used by rbd attachments).",
    ),
    cfg.BoolOpt(
        "cinder_do_extend_attached",
        default=False,
        help="Extend the volume while attached (Block Storage 3.42) instead of detaching it first.",
    ),
    cfg.IntOpt(
        "cinder_attachment_retry_attempts",
        min=1,
        default=5,
        help="Tries of creating an attachment while the volume is in a transitional state.",
    ),
]
