"""[key_manager] and [barbican]: where the certificates of signed images are fetched from (castellan's names, as
Glance reads them through castellan)."""

from __future__ import annotations

from oslo_config import cfg

KEY_MANAGER_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "backend",
        default="barbican",
        deprecated_name="api_class",
        help="castellan key manager holding the certificates of signed images: barbican (tested), vault, or a class.",
    ),
]
BARBICAN_OPTS: list[cfg.Opt] = [
    cfg.URIOpt("barbican_endpoint", help="Barbican's URL; unset, it is looked up in the caller's service catalog."),
    cfg.StrOpt("barbican_api_version", help="Barbican API version, for example v1."),
    cfg.URIOpt(
        "auth_endpoint",
        help="Keystone's v3 URL castellan authenticates the caller's token at. Unset, Glimpse takes "
        "[keystone_authtoken] www_authenticate_uri (or auth_url) with /v3 (castellan's own default is "
        "http://localhost/identity/v3).",
    ),
    cfg.StrOpt(
        "barbican_endpoint_type",
        default="public",
        choices=["public", "internal", "admin"],
        help="Interface of Barbican's catalog endpoint.",
    ),
    cfg.StrOpt("barbican_region_name", help="Region of Barbican's catalog endpoint."),
    cfg.BoolOpt("verify_ssl", default=True, help="Check Barbican's TLS certificate."),
    cfg.StrOpt("verify_ssl_path", help="CA bundle to check Barbican's TLS certificate with."),
]


def key_manager_options(conf: cfg.ConfigOpts) -> dict[str, dict[str, object]]:
    """What castellan reads; [barbican] auth_endpoint defaults to the Keystone that validates the tokens."""
    barbican: dict[str, object] = {o.dest: conf.barbican[o.dest] for o in BARBICAN_OPTS}
    if not barbican["auth_endpoint"]:  # the Keystone the service already validates tokens at
        keystone = conf.keystone_authtoken.www_authenticate_uri or conf.keystone_authtoken.auth_url
        if keystone:
            keystone = str(keystone).rstrip("/")
            barbican["auth_endpoint"] = keystone if keystone.endswith(("/v3", "/v3.0")) else keystone + "/v3"
    return {"key_manager": {"backend": conf.key_manager.backend}, "barbican": barbican}
