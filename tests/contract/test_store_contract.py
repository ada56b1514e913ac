"""One contract every store driver keeps, run against each backend on real servers:

- file: a folder;
- s3: moto_server, a real S3-compatible HTTP server on loopback (multipart above 5 MiB);
- swift: a real all-in-one OpenStack Swift on loopback with tempauth (segments of 2 MiB and a static
  large object manifest above 5 MiB);
- http: a real web server on loopback with Range support (read-only: the reading half of the contract);
- rbd: a real one-node Ceph cluster (tests/contract/ceph.py), images in its `images` pool as client.glance;
- vmware: vcsim, VMware's vCenter simulator (tests/contract/vcsim.py), files in a datastore folder of its own
  per test, written over the datastore's HTTP file interface.
- cinder: a real Cinder (tests/contract/cinder.py: cinder-api, -scheduler, -volume with the RBD driver on that
  Ceph, the test Keystone), a volume per image, attached through os-brick.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from swiftclient.exceptions import ClientException

from glimpse.domain.ports import Store
from glimpse.errors import BadRequest, NotFound, StoreError, TooLarge
from glimpse.sources.egress import EgressPolicy
from glimpse.store.cinder import WRITER, CinderStore
from glimpse.store.filesystem import FilesystemStore
from glimpse.store.http import HttpStore
from glimpse.store.rbd import RbdStore
from glimpse.store.s3 import MIB, S3Store
from glimpse.store.swift import SwiftStore
from glimpse.store.vmware import VmwareStore
from glimpse.store.vmware_locations import parse_datastores, parse_server
from tests.contract.ceph import CephCluster
from tests.contract.cinder import CinderServices
from tests.contract.fixtures import (  # noqa: F401  (real servers, once per run)
    ceph_cluster,
    cinder_services,
    s3_server,
    swift_server,
    vcsim_server,
    web_server,
)
from tests.contract.leftovers import SEGMENT, incomplete_uploads, orphan_segments
from tests.contract.servers import ACCESS_KEY, SECRET_KEY, S3Server, SwiftServer, WebServer
from tests.contract.vcsim import VcsimServer
from tests.keystone.fixtures import keystone_projects, keystone_server  # noqa: F401  (cinder's Keystone)

BIG = 10**12
WRITABLE = ("file", "s3", "swift", "rbd", "cinder", "vmware")


@dataclass
class Backend:
    kind: str
    store: Store
    # Puts data where the store reads it; returns the location URL.
    seed: Callable[[str, bytes], str]
    # Everything the store holds that is not a published image (partial files, multipart uploads) plus
    # the published objects, so a test can check that a failed write leaves nothing.
    contents: Callable[[], list[str]]


def _file(tmp_path: Path) -> Backend:
    store = FilesystemStore("local", tmp_path / "images", "node-1")

    def seed(image_id: str, data: bytes) -> str:
        return store.add(image_id, [data], max_size=BIG, expected_size=None, hash_algo="sha512").url

    return Backend("file", store, seed, lambda: sorted(p.name for p in store.datadir.iterdir()))


def _s3(server: S3Server) -> Backend:
    bucket = f"glimpse-{uuid.uuid4().hex[:12]}"
    store = S3Store(
        "objects",
        host=server.url,
        access_key=ACCESS_KEY,
        secret_key=SECRET_KEY,
        bucket=bucket,
        create_bucket_on_put=True,
        large_object_size=5 * MIB,
        large_object_chunk_size=5 * MIB,
    )
    client = server.client()

    def seed(image_id: str, data: bytes) -> str:
        return store.add(image_id, [data], max_size=BIG, expected_size=None, hash_algo="sha512").url

    def contents() -> list[str]:
        try:
            objects = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
        except client.exceptions.NoSuchBucket:
            return []
        uploads = [f"{key} (incomplete upload)" for key in incomplete_uploads(client, bucket)]
        return sorted(objects + uploads)

    return Backend("s3", store, seed, contents)


def swift_store(server: SwiftServer, container: str | None = None, node: str = "node-1") -> SwiftStore:
    return SwiftStore(
        "cold",
        node=node,
        auth_address=server.auth_url,
        user=server.user,
        key=server.key,
        container=container or f"glimpse-{uuid.uuid4().hex[:12]}",
        create_container_on_put=True,
        large_object_size=5 * MIB,
        large_object_chunk_size=2 * MIB,
    )


def _swift(server: SwiftServer) -> Backend:
    store = swift_store(server)

    def seed(image_id: str, data: bytes) -> str:
        return store.add(image_id, [data], max_size=BIG, expected_size=None, hash_algo="sha512").url

    def contents() -> list[str]:
        """Published objects, and segments no manifest uses (a segmented image's own segments are part of it)."""
        conn = server.connection()
        try:
            _, listing = conn.get_container(store.container, full_listing=True)
            orphans = orphan_segments(conn, store.container)
        except ClientException as exc:
            if exc.http_status == 404:
                return []
            raise
        finally:
            conn.close()
        return sorted([o["name"] for o in listing if not SEGMENT.match(o["name"])] + orphans)

    return Backend("swift", store, seed, contents)


def _rbd(cluster: CephCluster) -> Backend:
    # Small objects (1 MiB) so that the larger sizes below span several chunks and growth steps.
    store = RbdStore(
        "ceph",
        pool=cluster.pool,
        user=cluster.user,
        conf_file=str(cluster.conf),
        chunk_size=MIB,
        connect_timeout=10,
        node="node-1",
    )
    ioctx = store._ioctx()
    try:
        before = set(store.rbd.RBD().list(ioctx))  # the pool is shared by the whole run
    finally:
        ioctx.close()

    def seed(image_id: str, data: bytes) -> str:
        return store.add(image_id, [data], max_size=BIG, expected_size=None, hash_algo="sha512").url

    def contents() -> list[str]:
        ioctx = store._ioctx()
        try:
            return sorted(set(store.rbd.RBD().list(ioctx)) - before)
        finally:
            ioctx.close()

    return Backend("rbd", store, seed, contents)


def vmware_store(server: VcsimServer, image_dir: str | None = None, node: str = "node-1") -> VmwareStore:
    return VmwareStore(
        "vsphere",
        node=node,
        server=parse_server(server.host, "vsphere"),
        username=server.user,
        password=server.password,
        datastores=parse_datastores(["DC0:LocalDS_0:10", "DC0:LocalDS_1"], "vsphere"),
        image_dir=image_dir or f"glimpse-{uuid.uuid4().hex[:12]}",  # the server is shared by the whole run
        tls=ssl.create_default_context(cafile=str(server.ca_file)),
        poll_interval=1,
    )


def _vmware(server: VcsimServer) -> Backend:
    store = vmware_store(server)

    def seed(image_id: str, data: bytes) -> str:
        return store.add(image_id, [data], max_size=BIG, expected_size=None, hash_algo="sha512").url

    # Everything in the image folder of both datastores, partial files included.
    return Backend(
        "vmware",
        store,
        seed,
        lambda: server.files(store.image_dir) + server.files(store.image_dir, datastore="LocalDS_1"),
    )


def cinder_contents(services: CinderServices, before: set[str]) -> list[str]:
    """The image ids of the volumes made since `before` (a volume still being written: `<name> (partial)`)."""
    found = []
    for volume in services.client().volumes.list():
        if volume.id in before:
            continue
        metadata = volume.metadata or {}
        partial = WRITER in metadata or volume.status != "available"
        found.append(f"{volume.name} ({volume.status}, partial)" if partial else metadata["glance_image_id"])
    return sorted(found)


def _cinder(services: CinderServices) -> Backend:
    store = CinderStore("volumes", services.access(), node="node-1", state_timeout=120)
    before = {v.id for v in services.client().volumes.list()}  # the project is shared by the whole run

    def seed(image_id: str, data: bytes) -> str:
        return store.add(image_id, [data], max_size=BIG, expected_size=None, hash_algo="sha512").url

    return Backend("cinder", store, seed, lambda: cinder_contents(services, before))


def _http(server: WebServer) -> Backend:
    store = HttpStore("web", egress=EgressPolicy().trusting("127.0.0.1"))  # the operator's own web server
    return Backend("http", store, lambda image_id, data: server.publish(image_id, data), lambda: [])


def _make(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if kind == "file":
        return _file(tmp_path)
    if kind == "s3":
        return _s3(request.getfixturevalue("s3_server"))
    if kind == "swift":
        return _swift(request.getfixturevalue("swift_server"))
    if kind == "rbd":
        return _rbd(request.getfixturevalue("ceph_cluster"))
    if kind == "vmware":
        return _vmware(request.getfixturevalue("vcsim_server"))
    if kind == "cinder":
        return _cinder(request.getfixturevalue("cinder_services"))
    return _http(request.getfixturevalue("web_server"))


@pytest.fixture(params=["file", "s3", "swift", "http", "rbd", "cinder", "vmware"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _make(request.param, request, tmp_path)


@pytest.fixture(params=WRITABLE)
def writable(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _make(request.param, request, tmp_path)


def image_id() -> str:
    return str(uuid.uuid4())


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def read(store: Store, url: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join(store.get(url, offset, length))


# --- reading: every backend -----------------------------------------------------------------------
def test_get_returns_the_data(backend: Backend) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    url = backend.seed(image_id(), data)
    assert read(backend.store, url) == data
    assert backend.store.size(url) == len(data)


@pytest.mark.parametrize(
    ("offset", "length"), [(0, 1), (5, 10), (1000, None), (0, 4096), (4095, 1), (4000, 96), (4096, 0)]
)
def test_get_a_range(backend: Backend, offset: int, length: int | None) -> None:
    data = os.urandom(4096)
    url = backend.seed(image_id(), data)
    expected = data[offset:] if length is None else data[offset : offset + length]
    assert read(backend.store, url, offset, length) == expected


def test_missing_data_is_not_found(backend: Backend) -> None:
    seeded = image_id()
    url = backend.seed(seeded, b"x")
    # The same place, another name: a vsphere location ends in a query, a cinder one names a volume, not the image.
    missing = url.replace(seeded, image_id()) if seeded in url else url.rsplit("/", 1)[0] + f"/{image_id()}"
    with pytest.raises(NotFound):
        backend.store.get(missing)  # raised before any byte is read, so a caller can try another location
    with pytest.raises(NotFound):
        backend.store.size(missing)


def test_empty_data(backend: Backend) -> None:
    url = backend.seed(image_id(), b"")
    assert read(backend.store, url) == b""
    assert backend.store.size(url) == 0


def test_properties_are_plain_values(backend: Backend) -> None:
    props = backend.store.properties()
    assert all(isinstance(v, str | int | bool) for v in props.values())
    assert not any("secret" in k or "password" in k for k in props)


def test_read_only_store_refuses_writes(backend: Backend) -> None:
    if not backend.store.read_only:
        return
    with pytest.raises(StoreError):
        backend.store.add(image_id(), [b"data"], max_size=BIG, expected_size=None, hash_algo="sha512")


# --- writing: file, s3, swift, rbd, cinder and vmware -------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 1024 * 1024, 5 * MIB, 12 * MIB + 3])
def test_add_streams_hashes_and_reads_back(writable: Backend, size: int) -> None:
    data = os.urandom(size)
    iid = image_id()
    stored = writable.store.add(iid, chunks_of(data, 256 * 1024), max_size=BIG, expected_size=None, hash_algo="sha512")
    assert stored.size == size
    assert stored.checksum == hashlib.md5(data).hexdigest()
    assert (stored.hash_algo, stored.hash_value) == ("sha512", hashlib.sha512(data).hexdigest())
    assert read(writable.store, stored.url) == data
    assert writable.store.size(stored.url) == size
    assert writable.contents() == [iid]


def test_add_replaces_data_under_the_same_id(writable: Backend) -> None:
    iid = image_id()
    writable.store.add(iid, [b"old"], max_size=BIG, expected_size=None, hash_algo="sha256")
    stored = writable.store.add(iid, [b"newer"], max_size=BIG, expected_size=5, hash_algo="sha256")
    assert read(writable.store, stored.url) == b"newer"


def test_delete_removes_and_is_idempotent(writable: Backend) -> None:
    stored = writable.store.add(image_id(), [b"abc"], max_size=BIG, expected_size=3, hash_algo="sha512")
    writable.store.delete(stored.url)
    with pytest.raises(NotFound):
        writable.store.get(stored.url)
    writable.store.delete(stored.url)
    assert writable.contents() == []


@pytest.mark.parametrize("size", [100, 7 * MIB])  # one PUT, and a multipart upload that must be aborted
def test_size_cap_leaves_nothing(writable: Backend, size: int) -> None:
    data = os.urandom(size)
    with pytest.raises(TooLarge):
        writable.store.add(
            image_id(), chunks_of(data, 64 * 1024), max_size=size - 1, expected_size=None, hash_algo="sha512"
        )
    assert writable.contents() == []


def test_size_cap_stops_reading_the_source(writable: Backend) -> None:
    pulled = 0

    def source() -> Iterator[bytes]:
        nonlocal pulled
        for _ in range(1000):
            pulled += 1
            yield b"x" * 1024

    with pytest.raises(TooLarge):
        writable.store.add(image_id(), source(), max_size=10 * 1024, expected_size=None, hash_algo="sha512")
    assert pulled == 11


@pytest.mark.parametrize(("size", "expected"), [(10, 11), (10, 9), (6 * MIB, 6 * MIB + 1), (6 * MIB, 6 * MIB - 1)])
def test_wrong_expected_size_leaves_nothing(writable: Backend, size: int, expected: int) -> None:
    with pytest.raises((BadRequest, TooLarge)):
        writable.store.add(
            image_id(),
            chunks_of(os.urandom(size), 1024 * 1024),
            max_size=BIG,
            expected_size=expected,
            hash_algo="sha512",
        )
    assert writable.contents() == []


@pytest.mark.parametrize("fail_after", [0, 3, 9])  # MiB already sent: spooled, or in a multipart upload
def test_source_failure_leaves_nothing(writable: Backend, fail_after: int) -> None:
    class ClientWentAway(Exception):
        pass

    def source() -> Iterator[bytes]:
        for _ in range(fail_after):
            yield os.urandom(MIB)
        raise ClientWentAway()

    with pytest.raises(ClientWentAway):
        writable.store.add(image_id(), source(), max_size=BIG, expected_size=None, hash_algo="sha512")
    assert writable.contents() == []


def test_failed_replacement_keeps_the_old_data(writable: Backend) -> None:
    iid = image_id()
    stored = writable.store.add(iid, [b"kept"], max_size=BIG, expected_size=None, hash_algo="sha512")
    with pytest.raises(TooLarge):
        writable.store.add(iid, [os.urandom(6 * MIB)], max_size=MIB, expected_size=None, hash_algo="sha512")
    assert read(writable.store, stored.url) == b"kept"
    assert writable.contents() == [iid]
