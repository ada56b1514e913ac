"""What the vmware store does beyond the contract, on vcsim (tests/contract/vcsim.py): Glance's layout and
locations, the choice of datastore, the partial files of a writer killed half-way, an expired session, and the
server's failures (wrong password, untrusted certificate, server gone)."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from glimpse.errors import StoreError, StoreFull, StoreUnavailable
from glimpse.store.partials import node_tag
from glimpse.store.vmware import VmwareStore
from glimpse.store.vmware_api import manager
from glimpse.store.vmware_locations import parse_datastores, parse_server
from tests.contract.fixtures import vcsim_server  # noqa: F401  (vcsim, once per run)
from tests.contract.servers import REPO
from tests.contract.test_store_contract import BIG, chunks_of, read, vmware_store
from tests.contract.vcsim import VcsimServer

MIB = 1024 * 1024


@pytest.fixture
def vcsim(request: pytest.FixtureRequest) -> VcsimServer:
    return request.getfixturevalue("vcsim_server")  # type: ignore[no-any-return]


def add(store: VmwareStore, image_id: str, data: bytes, expected_size: int | None = None) -> str:
    return store.add(
        image_id, chunks_of(data, 256 * 1024), max_size=BIG, expected_size=expected_size, hash_algo="sha512"
    ).url


def test_glance_layout_and_location(vcsim: VcsimServer) -> None:
    store = vmware_store(vcsim)
    iid = str(uuid.uuid4())
    data = os.urandom(2 * MIB + 1)
    url = add(store, iid, data)
    # Glance's form: the heaviest datastore (LocalDS_0, weight 10), the image folder, dsName then dcPath.
    assert url == f"vsphere://{vcsim.host}/folder/{store.image_dir}/{iid}?dsName=LocalDS_0&dcPath=DC0"
    assert (vcsim.datastore_dir() / store.image_dir / iid).read_bytes() == data
    assert vcsim.files(store.image_dir, datastore="LocalDS_1") == []
    # The query in either order, and the host of the location is not where the store connects.
    other = f"vsphere://vcenter.invalid/folder/{store.image_dir}/{iid}?dcPath=DC0&dsName=LocalDS_0"
    assert read(store, other, 5, 10) == data[5:15]
    assert store.size(other) == len(data)


def test_a_killed_writers_partial_file_is_found_and_removed(vcsim: VcsimServer, tmp_path: Path) -> None:
    """A process writing through the store is killed -9 half-way: its partial file stays on the datastore,
    under its node's tag, until another node's recover() removes it; nobody else's files are touched."""
    image_dir = f"glimpse-{uuid.uuid4().hex[:12]}"
    mine, theirs, published = (str(uuid.uuid4()) for _ in range(3))
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    proc = subprocess.Popen(
        [sys.executable, str(writer), vcsim.host, str(vcsim.ca_file), image_dir, mine],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        deadline = time.monotonic() + 30
        while not [n for n in vcsim.files(image_dir) if n.startswith(mine)] and time.monotonic() < deadline:
            assert proc.poll() is None, (proc.stderr.read() if proc.stderr else b"").decode()
            time.sleep(0.1)
        time.sleep(0.5)  # some data on its way
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    left = vcsim.files(image_dir)
    assert len(left) == 1 and left[0].startswith(f"{mine}.{node_tag('node-dead')}.") and left[0].endswith(".partial")
    assert (vcsim.datastore_dir() / image_dir / left[0]).stat().st_size > 0

    alive = vmware_store(vcsim, image_dir, node="node-alive")
    add(alive, published, b"kept")
    other_partial = f"{theirs}.{node_tag('node-other')}.abcdef12.partial"
    (vcsim.datastore_dir() / image_dir / other_partial).write_bytes(b"another node's upload")

    alive.discard_partial(mine, "node-alive")  # its own partials: none
    assert left[0] in vcsim.files(image_dir)
    assert alive.recover("node-dead") == 1
    assert vcsim.files(image_dir) == sorted([published, other_partial])
    alive.discard_partial(theirs, "node-other")
    assert vcsim.files(image_dir) == [published]
    assert alive.recover("node-dead") == 0


WRITER = """
import ssl, sys, time
from glimpse.store.vmware import VmwareStore
from glimpse.store.vmware_locations import parse_datastores, parse_server

host, ca, image_dir, image_id = sys.argv[1:]
store = VmwareStore(
    "vsphere", node="node-dead", server=parse_server(host, "vsphere"), username="glimpse",
    password="vcsim-secret", datastores=parse_datastores(["DC0:LocalDS_0:10", "DC0:LocalDS_1"], "vsphere"),
    image_dir=image_dir, tls=ssl.create_default_context(cafile=ca),
)

def endless():
    while True:
        yield b"d" * 65536
        time.sleep(0.01)

store.add(image_id, endless(), max_size=10**12, expected_size=None, hash_algo="sha512")
"""


def test_the_heaviest_datastore_with_room_is_chosen(vcsim: VcsimServer) -> None:
    image_dir = f"glimpse-{uuid.uuid4().hex[:12]}"
    store = VmwareStore(
        "vsphere",
        node="node-1",
        server=parse_server(vcsim.host, "vsphere"),
        username=vcsim.user,
        password=vcsim.password,
        datastores=parse_datastores(["DC0:LocalDS_0", "DC0:LocalDS_1:5"], "vsphere"),
        image_dir=image_dir,
        tls=ssl.create_default_context(cafile=str(vcsim.ca_file)),
    )
    url = add(store, "heavy", b"data")
    assert "dsName=LocalDS_1" in url and vcsim.files(image_dir, datastore="LocalDS_1") == ["heavy"]
    # An announced size no datastore has room for: refused before any byte is sent, nothing written.
    with pytest.raises(StoreFull):
        store.add("huge", iter([b"x"]), max_size=BIG, expected_size=2**62, hash_algo="sha512")
    assert vcsim.files(image_dir) == [] and vcsim.files(image_dir, datastore="LocalDS_1") == ["heavy"]


def test_delete_removes_only_files_of_the_image_folder(vcsim: VcsimServer) -> None:
    store = vmware_store(vcsim)
    disk = vcsim.datastore_dir() / "vm-1" / "disk.vmdk"
    disk.parent.mkdir()
    disk.write_bytes(b"a virtual machine's disk")
    location = f"vsphere://{vcsim.host}/folder/vm-1/disk.vmdk?dsName=LocalDS_0&dcPath=DC0"
    assert read(store, location) == b"a virtual machine's disk"  # readable, as Glance reads any datastore file
    with pytest.raises(StoreError):
        store.delete(location)
    assert disk.exists()
    for bad in (
        f"vsphere://{vcsim.host}/folder/{store.image_dir}/../vm-1/disk.vmdk?dsName=LocalDS_0",
        f"vsphere://{vcsim.host}/{store.image_dir}/x?dsName=LocalDS_0",  # not under /folder
        f"vsphere://{vcsim.host}/folder/{store.image_dir}/x",  # no datastore
        f"https://{vcsim.host}/folder/{store.image_dir}/x?dsName=LocalDS_0",
    ):
        with pytest.raises(StoreError):
            store.get(bad)
        with pytest.raises(StoreError):
            store.delete(bad)
    assert disk.exists()


def test_an_expired_session_is_replaced(vcsim: VcsimServer) -> None:
    store = vmware_store(vcsim)
    url = add(store, "before", b"first")
    si, _ = store.api._session()
    manager(si.content.sessionManager).Logout()  # as when vCenter expires an idle session
    url2 = add(store, "after", b"second")  # the API calls log in again
    assert read(store, url) == b"first" and read(store, url2) == b"second"
    store.delete(url)
    assert vcsim.files(store.image_dir) == ["after"]


def test_wrong_password_and_untrusted_certificate_are_clear_errors(vcsim: VcsimServer) -> None:
    def store(password: str, tls: ssl.SSLContext) -> VmwareStore:
        return VmwareStore(
            "vsphere",
            node="node-1",
            server=parse_server(vcsim.host, "vsphere"),
            username=vcsim.user,
            password=password,
            datastores=parse_datastores(["DC0:LocalDS_0"], "vsphere"),
            image_dir="glimpse-refused",
            tls=tls,
            retries=1,
        )

    with pytest.raises(StoreError, match="refused the login of glimpse"):
        store("wrong", ssl.create_default_context(cafile=str(vcsim.ca_file))).add(
            "x", iter([b"x"]), max_size=BIG, expected_size=None, hash_algo="sha512"
        )
    with pytest.raises(StoreError, match="certificate is not trusted"):
        store(vcsim.password, ssl.create_default_context()).add(
            "x", iter([b"x"]), max_size=BIG, expected_size=None, hash_algo="sha512"
        )
    assert vcsim.files("glimpse-refused") == []


def test_a_server_that_is_gone_is_unavailable_not_missing(tmp_path: Path) -> None:
    server = VcsimServer(tmp_path).start()
    store = vmware_store(server)
    try:
        url = add(store, "img", b"data")
    finally:
        server.stop()
    store.retries = store.api.retries = 1
    with pytest.raises(StoreUnavailable):
        store.get(url)
    with pytest.raises(StoreUnavailable):
        store.delete(url)
    with pytest.raises(StoreUnavailable):
        store.add("img2", iter([b"x"]), max_size=BIG, expected_size=None, hash_algo="sha512")
    with pytest.raises(StoreError):  # not StoreUnavailable: a bad location is no outage
        store.get("vsphere://h/folder/x?dcPath=DC0")
