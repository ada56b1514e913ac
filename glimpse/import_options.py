"""The interoperable import's own sections: [image_import_opts] (its plugins), [inject_metadata_properties] and
[taskflow_executor], with Glance's names; and where staged data waits ([DEFAULT] node_staging_uri).

Where an import may fetch from is sources/options.py's; the import's timings are [DEFAULT]'s (default_options.py).
"""

from __future__ import annotations

from pathlib import Path

from oslo_config import cfg, types

from glimpse.errors import ConfigError
from glimpse.option_types import glance_list_opt

IMPORT_OPTS: list[cfg.Opt] = [
    glance_list_opt(
        "image_import_plugins",
        types.String(quotes=True),
        default=[],
        help="Import plugins, in order: image_decompression, image_conversion, inject_image_metadata.",
    ),
]
INJECT_OPTS: list[cfg.Opt] = [
    cfg.DictOpt("inject", default={}, help="Properties the inject_image_metadata plugin sets on imported images."),
    cfg.ListOpt("ignore_user_roles", default=["admin"], help="Roles whose imports get no injected properties."),
]
TASKFLOW_OPTS: list[cfg.Opt] = [
    cfg.IntOpt("max_workers", default=10, min=1, help="Imports each API process runs at once."),
]


def staging_dir(uri: str | None, data_dir: Path) -> Path:
    """The staging folder: node_staging_uri (file:// only), else beside the other data."""
    if not uri:
        return data_dir / "staging"
    if not uri.startswith("file://"):
        raise ConfigError(f"node_staging_uri {uri} must be a file:// URI.")
    return Path(uri[len("file://") :])
