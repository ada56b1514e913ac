"""[DEFAULT]'s own options, Glance's names and Glimpse's: the server, the limits and quotas, the data folder, the
import and task timings, deletion and scrubbing. Options of [DEFAULT] that belong to one feature sit with it (the
image cache's in cache/options.py, logging's in log_options.py, notifications' in messaging/options.py).
"""

from __future__ import annotations

import re

from oslo_config import cfg, types
from oslo_utils import strutils

from glimpse.errors import ConfigError
from glimpse.option_types import glance_list_opt

TIB = 1024**4

DEFAULT_OPTS: list[cfg.Opt] = [
    cfg.HostAddressOpt(
        "bind_host",
        default="127.0.0.1",
        help="Address the API listens on (Glimpse's own; Glance 33 is served by a WSGI server).",
    ),
    cfg.PortOpt("bind_port", default=9292, help="Port the API listens on (Glimpse's own)."),
    cfg.IntOpt("workers", default=1, min=1, help="Number of API worker processes (Glimpse's own)."),
    cfg.IntOpt("image_size_cap", default=TIB, min=1, max=9223372036854775808, help="Largest image accepted, in bytes."),
    cfg.StrOpt(
        "user_storage_quota",
        default="0",
        help="Bytes of image data each project may store (units B, KB, MB, GB, TB allowed); 0 is unlimited.",
    ),
    cfg.IntOpt("image_property_quota", default=128, help="Extra properties per image; negative is unlimited."),
    cfg.IntOpt("image_tag_quota", default=128, help="Tags per image; negative is unlimited."),
    cfg.IntOpt(
        "image_property_value_max_length",
        default=65535,
        min=1,
        help="Longest value of an extra image property, in characters (Glimpse's own; Glance has no cap).",
    ),
    cfg.IntOpt(
        "max_header_line",
        default=16384,
        min=256,
        help="Longest request header line (and request URL), in bytes (Glimpse's own; Glance before 33 had it for its "
        "eventlet server).",
    ),
    cfg.IntOpt("image_member_quota", default=128, help="Members per image; negative is unlimited."),
    cfg.IntOpt("image_location_quota", default=10, help="Locations per image; negative is unlimited."),
    cfg.IntOpt("limit_param_default", default=25, min=1, help="Page size when a list names no limit."),
    cfg.IntOpt("api_limit_max", default=1000, min=1, help="Largest page size a list may ask for."),
    cfg.BoolOpt("show_image_direct_url", default=False, help="Show the image's direct_url."),
    cfg.BoolOpt("show_multiple_locations", default=False, help="Show the image's locations."),
    cfg.StrOpt("hashing_algorithm", default="sha512", help="Algorithm of os_hash_value."),
    cfg.StrOpt(
        "data_dir", default="glimpse-data", help="Folder for the embedded database and image files (Glimpse's own)."
    ),
    cfg.BoolOpt(
        "allow_insecure_noauth_bind",
        default=False,
        help="Allow binding a non-loopback address without authentication (Glimpse's own).",
    ),
    glance_list_opt(
        "enabled_import_methods",
        types.String(quotes=True, choices=["glance-direct", "web-download", "copy-image", "glance-download"]),
        default=["glance-direct", "web-download", "copy-image"],
        help="Interoperable import methods offered. Glance's form is [glance-direct,copy-image]; Glimpse also reads "
        "the list without brackets.",
    ),
    cfg.StrOpt("public_endpoint", help="Public URL of the API, used in the versions document."),
    cfg.IntOpt(
        "upload_heartbeat_timeout",
        default=120,
        min=5,
        help="Seconds without data after which another process treats an upload as abandoned (Glimpse's own).",
    ),
    cfg.FloatOpt(
        "resumable_upload_expiration",
        default=24.0,
        min=0.0003,
        help="Hours a resumable (tus) upload may wait for its next chunk; then its data is removed, its quota "
        "reservation released and the image queued again. Upload-Expires shows the time (Glimpse's own).",
    ),
    cfg.IntOpt(
        "data_transfer_threads",
        default=100,
        min=1,
        help="Threads image data uploads and downloads may hold at once, apart from the threads metadata requests "
        "use: slow transfers past this number wait, and never leave the rest of the API without threads "
        "(Glimpse's own).",
    ),
    cfg.FloatOpt(
        "task_heartbeat_interval",
        default=5.0,
        min=0.1,
        help="Seconds between the heartbeats of a running import, copy or glance-download task (Glimpse's own).",
    ),
    cfg.FloatOpt(
        "task_stale_after",
        default=60.0,
        min=1.0,
        help="Seconds without a heartbeat after which another process takes a task over (or, for a "
        "glance-download, fails it); keep it well above task_heartbeat_interval (Glimpse's own).",
    ),
    cfg.IntOpt(
        "import_step_timeout",
        default=3600,
        min=1,
        help="Seconds one step of an import (download, conversion, writing to a store) may take (Glimpse's own).",
    ),
    cfg.StrOpt(
        "node_staging_uri",
        help="file:// folder where staged and importing data waits (default <data_dir>/staging); "
        "with several API nodes, a folder they all share. Glance's default is file:///tmp/staging/; Glimpse keeps "
        "staged data beside its other data on purpose.",
    ),
    cfg.BoolOpt(
        "delayed_delete",
        default=False,
        help="Deleted images go to pending_delete with their data kept until `glimpse scrub` removes it (after "
        "scrub_time); `glimpse scrub --restore IMAGE` brings one back meanwhile.",
    ),
    cfg.BoolOpt(
        "deduplicate_image_data",
        default=None,
        help="Identical image data (same size and sha512, with hashing_algorithm = sha512) is stored once per store "
        "and shared by every image that has it, with reference counts in the database (Glimpse's own). Shared data "
        "keeps the name of the image that stored it first, so while it is on only administrators see direct_url and "
        "locations. Unset: on, unless show_image_direct_url or show_multiple_locations shows locations (then off, "
        "and the API answers as Glance's does). True: on, locations for administrators only. False: new data is "
        "stored per image; data shared already stays shared until its last image lets it go.",
    ),
    cfg.IntOpt("scrub_time", default=0, min=0, help="Seconds an image stays pending_delete before it is scrubbed."),
    cfg.IntOpt("scrub_pool_size", default=1, min=1, help="Images one scrubber scrubs at once."),
    cfg.IntOpt(
        "wakeup_time",
        default=300,
        min=0,
        help="Seconds between the runs of `glimpse scrub --daemon`, and between the server's own retries of the data "
        "a delete could not remove (its store away), each removed once it has waited that long.",
    ),
    cfg.BoolOpt(
        "use_keystone_limits",
        default=False,
        help="Take per-project limits from Keystone's unified limits ([oslo_limit]) instead of Glimpse's own.",
    ),
    cfg.StrOpt(
        "property_protection_file",
        help="INI file of property protections: sections are regular expressions over extra-property names, each "
        "with create, read, update and delete rules. Unset: properties are not protected. A file that is missing "
        "or invalid stops the service from starting.",
    ),
    cfg.StrOpt(
        "property_protection_rule_format",
        default="roles",
        choices=("roles", "policies"),
        help="How property_protection_file names who may act: roles (comma-separated roles, @ everyone, ! nobody) "
        "or policies (one rule of the policy file per operation).",
    ),
    cfg.DictOpt(
        "enabled_backends",
        help="Multi-store: store id -> store type (file, http, s3, swift, rbd), e.g. 'fast:s3, reliable:file'. "
        "Each store id has its own section with the driver's options, store_description and weight.",
    ),
]


# The shape Glance accepts for user_storage_quota (a whole number, optionally B, KB, MB, GB or TB, each a power of
# 1024); Glimpse also takes the unit in any case and spaces around it. oslo.utils does the arithmetic.
_SIZE_SHAPE = re.compile(r"^\d+([KMGT]?B)?$")


def parse_size(text: str) -> int:
    """'10GB' -> bytes, as Glance's user_storage_quota accepts."""
    compact = "".join(text.split()).upper()
    if not _SIZE_SHAPE.match(compact):
        raise ConfigError(f"Invalid size {text!r}: use a number with an optional unit B, KB, MB, GB or TB.")
    return int(strutils.string_to_bytes(compact if compact.endswith("B") else compact + "B", "IEC", return_int=True))
