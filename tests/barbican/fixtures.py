"""pytest fixtures for a real Barbican behind the test Keystone: one server per test run.

Use them from a test module or conftest with `from tests.barbican.fixtures import barbican_server  # noqa: F401`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.barbican.server import BarbicanServer, install_barbican, register_key_manager
from tests.keystone.server import KeystoneServer


@pytest.fixture(scope="session")
def barbican_server(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BarbicanServer]:
    """A started Barbican, listed as key-manager in Keystone's catalog (keystone_projects makes its service user)."""
    install_barbican()
    server = BarbicanServer(tmp_path_factory.mktemp("barbican"), keystone_server).start()
    try:
        register_key_manager(keystone_server, server.url)
        yield server
    finally:
        server.stop()
