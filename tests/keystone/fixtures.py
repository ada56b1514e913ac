"""pytest fixtures for a real Keystone: one server per test run, however many conftests import these.

Use them from a conftest with `from tests.keystone.fixtures import keystone_projects, keystone_server  # noqa: F401`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.keystone.server import KeystoneServer, install_keystone
from tests.keystone.setup import bootstrap_projects

# Several conftests may import these fixtures, each import being its own fixture definition: they share one server.
_shared: dict[str, Any] = {"server": None, "users": 0, "projects": None}


@pytest.fixture(scope="session")
def keystone_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeystoneServer]:
    """A started Keystone (installing it first with scripts/install-keystone if needed)."""
    if _shared["server"] is None:
        install_keystone()
        _shared["server"] = KeystoneServer(tmp_path_factory.mktemp("keystone")).start()
    _shared["users"] += 1
    try:
        yield _shared["server"]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            _shared["server"].stop()
            _shared["server"] = None
            _shared["projects"] = None


@pytest.fixture(scope="session")
def keystone_projects(keystone_server: KeystoneServer) -> dict[str, Any]:
    """bootstrap_projects(keystone_server) without an image endpoint: see tests/keystone/setup.py for its keys."""
    if _shared["projects"] is None:
        _shared["projects"] = bootstrap_projects(keystone_server)
    return dict(_shared["projects"])
