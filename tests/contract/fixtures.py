"""Session fixtures for the real servers of tests/contract/servers.py: one of each per test run.

Import them from a conftest: `from tests.contract.fixtures import s3_server, swift_server, web_server  # noqa: F401`
(and `ceph_cluster` for a real one-node Ceph, tests/contract/ceph.py; `cinder_services` for a real Cinder on it,
tests/contract/cinder.py, which also needs `keystone_server` and `keystone_projects` from tests.keystone.fixtures;
`vcsim_server` for VMware's vCenter simulator, tests/contract/vcsim.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.contract.ceph import CephCluster
from tests.contract.cinder import CinderServices, install_cinder
from tests.contract.servers import S3Server, SwiftServer, WebServer
from tests.contract.vcsim import VcsimServer

# Several conftests may import these fixtures; each import is its own definition, so they share the servers.
_shared: dict[str, Any] = {
    **{"s3": None, "s3_users": 0, "swift": None, "swift_users": 0},
    **{"ceph": None, "ceph_users": 0, "cinder": None, "cinder_users": 0},
}
_shared.update(vcsim=None, vcsim_users=0)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    if _shared["s3"] is None:
        _shared["s3"] = S3Server(tmp_path_factory.mktemp("s3")).start()
    _shared["s3_users"] += 1
    try:
        yield _shared["s3"]
    finally:
        _shared["s3_users"] -= 1
        if _shared["s3_users"] == 0:
            _shared["s3"].stop()
            _shared["s3"] = None


@pytest.fixture(scope="session")
def swift_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftServer]:
    """An all-in-one Swift (proxy, account, container, object servers, tempauth) on loopback."""
    if _shared["swift"] is None:
        _shared["swift"] = SwiftServer(tmp_path_factory.mktemp("swift")).start()
    _shared["swift_users"] += 1
    try:
        yield _shared["swift"]
    finally:
        _shared["swift_users"] -= 1
        if _shared["swift_users"] == 0:
            _shared["swift"].stop()
            _shared["swift"] = None


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    server = WebServer(tmp_path_factory.mktemp("web")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ceph_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CephCluster]:
    """A throwaway one-node Ceph (mon, mgr, memstore OSD) with an `images` pool, once per run."""
    if _shared["ceph"] is None:
        _shared["ceph"] = CephCluster(tmp_path_factory.mktemp("ceph")).start()
    _shared["ceph_users"] += 1
    try:
        yield _shared["ceph"]
    finally:
        _shared["ceph_users"] -= 1
        if _shared["ceph_users"] == 0:
            _shared["ceph"].stop()
            _shared["ceph"] = None


@pytest.fixture(scope="session")
def vcsim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VcsimServer]:
    """vcsim, VMware's vCenter simulator (scripts/install-vcsim): DC0 with datastores LocalDS_0 and LocalDS_1."""
    if _shared["vcsim"] is None:
        _shared["vcsim"] = VcsimServer(tmp_path_factory.mktemp("vcsim")).start()
    _shared["vcsim_users"] += 1
    try:
        yield _shared["vcsim"]
    finally:
        _shared["vcsim_users"] -= 1
        if _shared["vcsim_users"] == 0:
            _shared["vcsim"].stop()
            _shared["vcsim"] = None


@pytest.fixture(scope="session")
def cinder_services(
    tmp_path_factory: pytest.TempPathFactory,
    keystone_server: Any,
    keystone_projects: dict[str, Any],
    ceph_cluster: CephCluster,
) -> Iterator[CinderServices]:
    """cinder-api, cinder-scheduler and cinder-volume (RBD on ceph_cluster), in the test Keystone's catalog."""
    if _shared["cinder"] is None:
        install_cinder()
        _shared["cinder"] = CinderServices(tmp_path_factory.mktemp("cinder"), keystone_server, ceph_cluster).start()
    _shared["cinder_users"] += 1
    try:
        yield _shared["cinder"]
    finally:
        _shared["cinder_users"] -= 1
        if _shared["cinder_users"] == 0:
            _shared["cinder"].stop()
            _shared["cinder"] = None
