"""Optional libraries, each brought by an extra of the glimpse package.

The default install serves the embedded default (SQLite, a folder of images, no Keystone). A configuration
that needs more (an s3 store, Keystone, MariaDB, ...) names the extra to install when its library is missing,
at start-up rather than on the first request that needs it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from glimpse.errors import ConfigError

# module -> (distribution on PyPI, extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "boto3": ("boto3", "s3"),
    "swiftclient": ("python-swiftclient", "swift"),
    "keystoneclient": ("python-keystoneclient", "swift"),
    "pyVmomi": ("pyvmomi", "vmware"),
    "keystoneauth1": ("keystoneauth1", "keystone"),
    "cinderclient": ("python-cinderclient", "cinder"),
    "os_brick": ("os-brick", "cinder"),
    "oslo_limit": ("oslo.limit", "keystone"),
    "pymemcache": ("pymemcache", "keystone"),
    "redis": ("redis", "redis"),
    "castellan": ("castellan", "signing"),
    "barbicanclient": ("python-barbicanclient", "signing"),
    "pymysql": ("PyMySQL", "mysql"),
    "psycopg": ("psycopg[binary]", "postgresql"),
    "oslo_messaging": ("oslo.messaging", "notifications"),
}

# Not on PyPI: the distribution packages them with Ceph.
SYSTEM_PACKAGES: dict[str, str] = {"rados": "python3-rados", "rbd": "python3-rbd"}


def missing_message(module: str, needed_by: str) -> str:
    if module in SYSTEM_PACKAGES:
        return (
            f"{needed_by} needs Ceph's Python bindings ({module}), which are not on PyPI: install the distribution's "
            f"{SYSTEM_PACKAGES[module]} package and make it importable by Glimpse's Python."
        )
    if module == "psycopg2":  # an explicit postgresql+psycopg2:// URL
        return f"{needed_by} needs psycopg2: pip install psycopg2-binary, or use postgresql:// (glimpse[postgresql])."
    dist, extra = EXTRAS.get(module, (module, "all"))
    return f"{needed_by} needs the Python package {dist}: install it with pip install 'glimpse[{extra}]'."


def require(module: str, needed_by: str) -> ModuleType:
    """Import an optional module, or stop with a ConfigError naming what installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(missing_message(module, needed_by)) from exc
