"""[import_filtering_opts] and [egress]: where server-side fetches may go, and how long and slowly they may run;
[glance_download_opts] and [glance_download_properties]: fetching images from another region."""

from __future__ import annotations

from oslo_config import cfg, types

from glimpse.option_types import glance_list_opt

_SCHEME = types.String(quotes=True)
_PORT = types.Integer(min=1, max=65535)

IMPORT_FILTER_OPTS: list[
    cfg.Opt
] = [  # Glance's names; Glimpse applies them to every fetch a user can aim (sources/egress.py)
    glance_list_opt(
        "allowed_schemes", _SCHEME, default=["http", "https"], help="URL schemes server-side fetches may use."
    ),
    glance_list_opt("disallowed_schemes", _SCHEME, default=[], help="URL schemes server-side fetches refuse."),
    glance_list_opt(
        "allowed_hosts",
        types.HostAddress(),
        default=[],
        help="If set, the only hosts web-download, locations and the http store may fetch from; a host listed "
        "here may also be internal (loopback, private).",
    ),
    glance_list_opt("disallowed_hosts", types.HostAddress(), default=[], help="Hosts server-side fetches refuse."),
    glance_list_opt(
        "allowed_ports",
        _PORT,
        default=[80, 443],
        help="Ports server-side fetches may connect to (empty: any). Glance's form is [80,443]; Glimpse also reads "
        "80,443 without brackets.",
    ),
    glance_list_opt("disallowed_ports", _PORT, default=[], help="Ports server-side fetches refuse."),
    cfg.BoolOpt(
        "allow_private_addresses",
        default=False,
        help="Let server-side fetches reach every non-global address (loopback, private, CGNAT, link-local...): "
        "refused by default (Glimpse's own option).",
    ),
]
EGRESS_OPTS: list[cfg.Opt] = [  # Glimpse's own section: how long and how slowly any server-side fetch may run
    cfg.FloatOpt("connect_timeout", default=10.0, min=0.1, help="Seconds to connect to a remote server."),
    cfg.FloatOpt("read_timeout", default=60.0, min=0.1, help="Longest wait, in seconds, for any single read."),
    cfg.IntOpt(
        "min_rate",
        default=10240,
        min=0,
        help="Minimum bytes per second a remote server must deliver, measured over min_rate_window seconds of "
        "waiting on it; a slower transfer is cut off.",
    ),
    cfg.FloatOpt("min_rate_window", default=30.0, min=0.1, help="Seconds of waiting over which min_rate is judged."),
    cfg.FloatOpt(
        "total_timeout",
        default=43200.0,
        min=1.0,
        help="Wall-clock seconds a whole fetch (redirects included) may last; generous for very large images.",
    ),
    cfg.IntOpt("max_redirects", default=5, min=0, max=20, help="Redirects followed, each checked again."),
    cfg.ListOpt(
        "http_store_allowed_hosts",
        default=[],
        help="Hosts (host or host:port) the http store and image locations may read from even when internal and "
        "on any port, e.g. an internal web server holding images; connections stay pinned and bounded.",
    ),
]
GLANCE_DOWNLOAD_OPTS: list[cfg.Opt] = [
    cfg.DictOpt(  # Glimpse's own
        "region_endpoints",
        default={},
        help="region:URL of other image services for glance-download when the caller's catalog has none "
        "(Glimpse's own; Glance only uses the catalog).",
    ),
]
GLANCE_DOWNLOAD_PROPERTY_OPTS: list[cfg.Opt] = [
    glance_list_opt(
        "extra_properties",
        types.String(quotes=True),
        default=["hw_", "trait:", "os_distro", "os_secure_boot", "os_type"],
        help="Property names (or prefixes) an image downloaded from another region takes over.",
    ),
]
