"""What the rbd store does beyond the common contract, checked on the real one-node Ceph cluster with the
`rbd` CLI: Glance's layout (image named by the image id, protected snapshot `snap`, object size of
rbd_store_chunk_size), clones blocking a delete, a killed writer's partial image, an unreachable cluster."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from glimpse.errors import NotFound, StoreError, StoreUnavailable
from glimpse.store.rbd import MIB, RbdStore
from tests.contract.ceph import CephCluster
from tests.contract.fixtures import ceph_cluster  # noqa: F401  (a real Ceph, once per run)
from tests.contract.servers import free_port

BIG = 10**12


def _store(cluster: CephCluster, **kwargs: object) -> RbdStore:
    options: dict[str, object] = {
        "pool": cluster.pool,
        "user": cluster.user,
        "conf_file": str(cluster.conf),
        "chunk_size": MIB,
        "connect_timeout": 10,
        "node": "node-1",
    }
    options.update(kwargs)
    return RbdStore("ceph", **options)  # type: ignore[arg-type]


def _rbd_json(cluster: CephCluster, *args: str) -> object:
    return json.loads(cluster.rbd(*args, "--format", "json"))


def _images(cluster: CephCluster) -> list[str]:
    return list(_rbd_json(cluster, "ls", cluster.pool))  # type: ignore[call-overload]


def _read(store: RbdStore, url: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join(store.get(url, offset, length))


def test_glance_layout(ceph_cluster: CephCluster) -> None:  # noqa: F811
    store = _store(ceph_cluster, chunk_size=4 * MIB)
    iid = str(uuid.uuid4())
    data = os.urandom(9 * MIB + 5)
    stored = store.add(iid, [data[i : i + 300_000] for i in range(0, len(data), 300_000)], max_size=BIG,
                       expected_size=None, hash_algo="sha512")  # fmt: skip
    assert stored.url == f"rbd://{ceph_cluster.fsid}/images/{iid}/snap"
    assert (stored.size, stored.checksum) == (len(data), hashlib.md5(data).hexdigest())
    info = _rbd_json(ceph_cluster, "info", f"images/{iid}")
    assert info["size"] == len(data)  # type: ignore[index]
    assert info["order"] == 22  # type: ignore[index]  # 4 MiB objects: rbd_store_chunk_size
    assert info["format"] == 2  # type: ignore[index]
    assert "layering" in info["features"]  # type: ignore[index]
    snaps = _rbd_json(ceph_cluster, "snap", "ls", f"images/{iid}")
    assert [(s["name"], s["protected"], s["size"]) for s in snaps] == [("snap", "true", len(data))]  # type: ignore[attr-defined,index]
    exported = ceph_cluster.dir / f"{iid}.raw"
    ceph_cluster.rbd("export", "--no-progress", f"images/{iid}@snap", str(exported))
    assert exported.read_bytes() == data
    exported.unlink()
    assert _read(store, stored.url, 4 * MIB - 3, 10) == data[4 * MIB - 3 : 4 * MIB + 7]
    assert iid in _images(ceph_cluster)
    assert not [n for n in _images(ceph_cluster) if n.startswith(iid + ".")]


def test_announced_size_and_a_reader_of_the_old_one_part_location(ceph_cluster: CephCluster) -> None:  # noqa: F811
    store = _store(ceph_cluster)
    iid = str(uuid.uuid4())
    data = os.urandom(3 * MIB + 1)
    stored = store.add(iid, [data], max_size=BIG, expected_size=len(data), hash_algo="sha256")
    assert store.size(stored.url) == len(data)
    assert _read(store, f"rbd://{iid}") == data  # Glance's pre-fsid locations name the image alone
    assert _read(store, f"rbd://{iid}", 3 * MIB, 100) == data[3 * MIB :]


def test_delete_removes_snapshot_and_image(ceph_cluster: CephCluster) -> None:  # noqa: F811
    store = _store(ceph_cluster)
    iid = str(uuid.uuid4())
    stored = store.add(iid, [b"data"], max_size=BIG, expected_size=4, hash_algo="sha512")
    store.delete(stored.url)
    assert iid not in _images(ceph_cluster)
    with pytest.raises(NotFound):
        store.size(stored.url)


def test_clones_block_a_delete(ceph_cluster: CephCluster) -> None:  # noqa: F811
    store = _store(ceph_cluster)
    iid = str(uuid.uuid4())
    data = os.urandom(2 * MIB)
    stored = store.add(iid, [data], max_size=BIG, expected_size=None, hash_algo="sha512")
    child = f"volume-{iid[:8]}"
    ceph_cluster.rbd("clone", f"images/{iid}@snap", f"images/{child}")  # what Cinder and Nova do
    with pytest.raises(StoreError, match=rf"in use.*clones.*images/{child}"):
        store.delete(stored.url)
    assert _read(store, stored.url) == data  # nothing was removed
    snaps = _rbd_json(ceph_cluster, "snap", "ls", f"images/{iid}")
    assert [(s["name"], s["protected"]) for s in snaps] == [("snap", "true")]  # type: ignore[attr-defined,index]
    ceph_cluster.rbd("rm", "--no-progress", f"images/{child}")
    store.delete(stored.url)
    assert iid not in _images(ceph_cluster)


def test_a_client_holding_the_image_open_blocks_a_delete(ceph_cluster: CephCluster) -> None:  # noqa: F811
    store = _store(ceph_cluster)
    iid = str(uuid.uuid4())
    stored = store.add(iid, [b"abc"], max_size=BIG, expected_size=None, hash_algo="sha512")
    other = _store(ceph_cluster)
    ioctx = other._ioctx()
    image = other.rbd.Image(ioctx, iid)  # a writable open keeps a watch, as a running VM's librbd does
    try:
        with pytest.raises(StoreError, match="in use"):
            store.delete(stored.url)
    finally:
        image.close()
        ioctx.close()
    store.delete(stored.url)
    assert iid not in _images(ceph_cluster)


WRITER = textwrap.dedent(
    """
    import os, sys, time
    from glimpse.store.rbd import RbdStore, MIB
    store = RbdStore("ceph", pool="images", user="glance", conf_file=sys.argv[1], chunk_size=MIB,
                     connect_timeout=10, node="node-dead")

    def source():
        for _ in range(3):
            yield os.urandom(MIB)
        print("WRITING", flush=True)
        time.sleep(600)

    store.add(sys.argv[2], source(), max_size=10**12, expected_size=None, hash_algo="sha512")
    """
)


def _killed_writer(cluster: CephCluster, iid: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(cluster.conf), iid], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = proc.stdout.readline() if proc.stdout else b""
        assert line.strip() == b"WRITING", (proc.stderr.read() if proc.stderr else b"").decode()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)


def test_a_killed_writers_partial_image_is_discarded(ceph_cluster: CephCluster) -> None:  # noqa: F811
    iid = str(uuid.uuid4())
    _killed_writer(ceph_cluster, iid)
    partial = [n for n in _images(ceph_cluster) if n.startswith(f"{iid}.")]
    assert len(partial) == 1 and partial[0].endswith(".partial")
    assert iid not in _images(ceph_cluster)

    _store(ceph_cluster, node="node-alive").discard_partial(iid, "node-alive")  # another node's partials only
    assert partial[0] in _images(ceph_cluster)
    started = time.monotonic()
    store = _store(ceph_cluster, node="node-alive")
    store.discard_partial(iid, "node-dead")  # waits until the OSDs drop the dead writer's watch
    assert partial[0] not in _images(ceph_cluster)
    assert time.monotonic() - started < store.stale_watch_wait


def test_recover_removes_only_that_nodes_partials(ceph_cluster: CephCluster) -> None:  # noqa: F811
    mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    _killed_writer(ceph_cluster, mine)
    store = _store(ceph_cluster)
    ioctx = store._ioctx()
    try:
        other_partial = f"{theirs}.{'0' * 16}.abcdef12.partial"
        store.rbd.RBD().create(ioctx, other_partial, MIB)
    finally:
        ioctx.close()
    assert store.recover("node-dead") == 1
    left = [n for n in _images(ceph_cluster) if n.startswith((mine, theirs))]
    assert left == [other_partial]
    ceph_cluster.rbd("rm", "--no-progress", f"images/{other_partial}")


def test_thin_provisioning_skips_zero_chunks(ceph_cluster: CephCluster) -> None:  # noqa: F811
    store = _store(ceph_cluster, thin_provisioning=True)
    iid = str(uuid.uuid4())
    data = bytes(4 * MIB) + os.urandom(MIB) + bytes(MIB)
    stored = store.add(iid, [data], max_size=BIG, expected_size=None, hash_algo="sha512")
    assert _read(store, stored.url) == data
    usage = _rbd_json(ceph_cluster, "du", f"images/{iid}")
    head = [i for i in usage["images"] if i["name"] == iid and i.get("snapshot") is None]  # type: ignore[index]
    assert head[0]["provisioned_size"] == 6 * MIB
    assert head[0]["used_size"] <= MIB
    store.delete(stored.url)


def test_a_missing_pool_is_a_clear_error(ceph_cluster: CephCluster) -> None:  # noqa: F811
    store = _store(ceph_cluster, pool="no-such-pool")
    with pytest.raises(StoreError, match="pool no-such-pool does not exist"):
        store.add(str(uuid.uuid4()), [b"x"], max_size=BIG, expected_size=None, hash_algo="sha512")


def test_an_unreachable_cluster_is_unavailable(ceph_cluster: CephCluster, tmp_path: Path) -> None:  # noqa: F811
    conf = tmp_path / "ceph.conf"
    text = ceph_cluster.conf.read_text().replace(f"127.0.0.1:{ceph_cluster.port}", f"127.0.0.1:{free_port()}")
    conf.write_text(text)
    store = _store(ceph_cluster, conf_file=str(conf), connect_timeout=2)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=r"cannot connect to Ceph as client\.glance"):
        store.get(f"rbd://{ceph_cluster.fsid}/images/{uuid.uuid4()}/snap")
    assert time.monotonic() - started < 15
