"""The swift store's options (glance_store's names); sizes in MiB."""

from __future__ import annotations

from oslo_config import cfg

OPTS: list[cfg.Opt] = [
    cfg.StrOpt(
        "swift_store_auth_address",
        help="Auth URL: tempauth's (http://host:8080/auth/v1.0) or Keystone's (http://host:5000/v3).",
    ),
    cfg.StrOpt("swift_store_user", help="tempauth 'account:user', or Keystone 'project:user'."),
    cfg.StrOpt("swift_store_key", secret=True, help="Key or password of swift_store_user."),
    cfg.StrOpt(
        "swift_store_auth_version",
        default="3",
        choices=["1", "2", "3"],
        help="1 for tempauth (and other v1.0 auth), 3 for Keystone v3 (2: Keystone v2.0). Glance 33 accepts only 3; "
        "Glimpse also 1 and 2 on purpose, for tempauth clusters.",
    ),
    cfg.StrOpt("swift_store_container", default="glance", help="Container holding the images and their segments."),
    cfg.BoolOpt("swift_store_create_container_on_put", default=False, help="Create the container when it is missing."),
    cfg.IntOpt(
        "swift_store_large_object_size",
        default=5120,
        min=1,
        help="MiB from which images are stored as segments and a manifest (a static large object).",
    ),
    cfg.IntOpt("swift_store_large_object_chunk_size", default=200, min=1, help="MiB per segment."),
    cfg.StrOpt("swift_store_region", help="Region of the object-store endpoint in Keystone's catalog."),
    cfg.StrOpt(
        "swift_store_endpoint_type",
        default="publicURL",
        choices=["publicURL", "adminURL", "internalURL"],
        help="Interface of the object-store endpoint in Keystone's catalog.",
    ),
    cfg.StrOpt("swift_store_service_type", default="object-store", help="Service type of Swift in the catalog."),
    cfg.StrOpt(
        "swift_store_endpoint",
        help="Storage URL to use instead of the one authentication returns, e.g. http://host:8080/v1/AUTH_x.",
    ),
    cfg.BoolOpt("swift_store_auth_insecure", default=False, help="Do not verify the certificates of https URLs."),
    cfg.StrOpt("swift_store_cacert", help="CA bundle to verify the Swift and auth URLs with."),
]
