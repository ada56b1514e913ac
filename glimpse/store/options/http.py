"""The http store's options (glance_store's names)."""

from __future__ import annotations

from oslo_config import cfg

OPTS: list[cfg.Opt] = [
    cfg.BoolOpt("https_insecure", default=True, help="Do not verify the certificates of https locations."),
    cfg.StrOpt("https_ca_certificates_file", help="CA bundle to verify https locations with."),
    cfg.DictOpt("http_proxy_information", default={}, help="Proxy per scheme, e.g. 'http:http://proxy:3128'."),
]
