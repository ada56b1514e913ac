"""Options of the service's HTTP front: request bodies, CORS, and the dashboard's sessions.

config.py collects them with every other section (SECTIONS); api/limits.py, api/cors.py and the dashboard read
them from Settings.
"""

from __future__ import annotations

from oslo_config import cfg

DASHBOARD_OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "secret_key",
        secret=True,
        help="Key signing dashboard sessions; generated in data_dir when unset (Glimpse's own section).",
    ),
    cfg.StrOpt(
        "session_backend",
        default="database",
        choices=("database", "redis"),
        help="Where dashboard sessions live, shared by every API node: the database, or Redis at redis_url.",
    ),
    cfg.StrOpt("redis_url", help="Redis URL (redis://host:port/db) of the sessions when session_backend = redis."),
]
# oslo.middleware's sizelimit option (same section, name and default): the largest request body a
# metadata request may carry. Image data (upload, stage) is bounded by image_size_cap instead.
OSLO_MIDDLEWARE_OPTS: list[cfg.Opt] = [
    cfg.IntOpt(
        "max_request_body_size",
        default=114688,
        min=1,
        help="Largest body, in bytes, of a request that is not image data (JSON, forms). Unlike oslo.middleware, "
        "Glimpse refuses values below 1.",
    ),
]
# oslo.middleware's CORS options (same section, names and types) with the defaults Glance sets for them
# (glance.common.config.set_cors_middleware_defaults); read by glimpse/api/cors.py.
CORS_OPTS: list[cfg.Opt] = [
    cfg.ListOpt(
        "allowed_origin",
        help='Origins ("<protocol>://<host>[:<port>]", no trailing slash) whose web pages may call the API, '
        "for example Horizon's for its direct image upload; '*' allows any.",
    ),
    cfg.BoolOpt("allow_credentials", default=True, help="Whether the actual request can include user credentials."),
    cfg.ListOpt(
        "expose_headers",
        default=[
            "X-Image-Meta-Checksum",
            "X-Auth-Token",
            "X-Subject-Token",
            "X-Service-Token",
            "X-OpenStack-Request-ID",
        ],
        help="Response headers a page of an allowed origin may read.",
    ),
    cfg.IntOpt("max_age", default=3600, help="Seconds a browser may cache a preflight answer."),
    cfg.ListOpt(
        "allow_methods",
        default=["GET", "PUT", "POST", "DELETE", "PATCH"],
        help="Methods an allowed origin's pages may use.",
    ),
    cfg.ListOpt(
        "allow_headers",
        default=[
            "Content-MD5",
            "X-Image-Meta-Checksum",
            "X-Storage-Token",
            "Accept-Encoding",
            "X-Auth-Token",
            "X-Identity-Status",
            "X-Roles",
            "X-Service-Catalog",
            "X-User-Id",
            "X-Tenant-Id",
            "X-OpenStack-Request-ID",
        ],
        help="Request headers (besides the simple ones) an allowed origin's pages may send.",
    ),
]
