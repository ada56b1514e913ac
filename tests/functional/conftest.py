"""Servers for the functional tests: one real `glimpse serve` per database, started once per run."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.functional.clients import Clients
from tests.functional.databases import fresh_database
from tests.functional.server import GlimpseServer
from tests.keystone.fixtures import keystone_projects, keystone_server  # noqa: F401  (a real Keystone)

BACKENDS = ("sqlite", "mysql", "postgresql")


@pytest.fixture(scope="session", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    """A server on the embedded SQLite default, or on MariaDB / PostgreSQL after `glimpse db sync`."""
    backend = request.param
    with ExitStack() as stack:
        workdir = tmp_path_factory.mktemp(f"glimpse-{backend}")
        url = None if backend == "sqlite" else stack.enter_context(fresh_database(backend))
        # A small default page makes every client follow `next` links.
        srv = GlimpseServer(workdir, url, extra_conf="limit_param_default = 4")
        if url is not None:
            sync = srv.command("db", "sync")
            assert sync.returncode == 0, sync.stderr
        srv.start()
        stack.callback(srv.stop)
        yield srv


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    srv = GlimpseServer(tmp_path_factory.mktemp("glimpse-api")).start()
    yield srv
    srv.stop()


@pytest.fixture
def clients(server: GlimpseServer, tmp_path: Path) -> Clients:
    return Clients(server.url, tmp_path / "home")
