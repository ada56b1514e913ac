"""What the cinder store does beyond the common contract, on a real Cinder (tests/contract/cinder.py): Glance's
volume layout and locations, growing a volume past its first GiB (detached and attached), attachments released
on every path, a volume in use kept, a writer killed -9 mid-upload cleaned up by recover, Block Storage away."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator

import pytest

from glimpse.errors import NotFound, StoreError, StoreUnavailable
from glimpse.store.cinder import GIB, UPLOAD, WRITER, WRITING, CinderStore, VolumeInUse
from glimpse.store.objects import MIB
from tests.contract.ceph import CephCluster
from tests.contract.cinder import CinderServices
from tests.contract.fixtures import ceph_cluster, cinder_services  # noqa: F401  (real servers, once per run)
from tests.keystone.fixtures import keystone_projects, keystone_server  # noqa: F401  (cinder's Keystone)

BIG = 10**13


def _store(services: CinderServices, **kwargs: object) -> CinderStore:
    options: dict[str, object] = {"node": "node-1", "state_timeout": 120}
    options.update(kwargs)
    return CinderStore("vol", services.access(), **options)  # type: ignore[arg-type]


def _volume_id(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _read(store: CinderStore, url: str, offset: int = 0, length: int | None = None) -> bytes:
    return b"".join(store.get(url, offset, length))


def _assert_detached(services: CinderServices, volume_id: str) -> None:
    volume = services.client().volumes.get(volume_id)
    assert (volume.status, volume.attachments) == ("available", [])
    assert list(services.client().attachments.list(search_opts={"volume_id": volume_id})) == []


def test_glance_layout_and_locations(cinder_services: CinderServices) -> None:  # noqa: F811
    store = _store(cinder_services)
    iid = str(uuid.uuid4())
    data = os.urandom(3 * MIB + 11)
    stored = store.add(iid, [data], max_size=BIG, expected_size=len(data), hash_algo="sha512")
    volume_id = _volume_id(stored.url)
    assert stored.url == f"cinder://{volume_id}"  # Glance's single-store form
    volume = cinder_services.client().volumes.get(volume_id)
    assert volume.name == f"image-{iid}"
    assert volume.size == 1
    assert volume.metadata["glance_image_id"] == iid
    assert volume.metadata["image_size"] == str(len(data))
    assert not {WRITER, UPLOAD, WRITING} & set(volume.metadata)
    assert volume.metadata.get("readonly") == "True"  # made read-only once complete, as Glance does
    _assert_detached(cinder_services, volume_id)

    # The multi-store form names the store; both forms (and Glance's) are read by either store.
    multi = _store(cinder_services, multi=True)
    assert multi._url(volume_id) == f"cinder://vol/{volume_id}"
    assert _read(multi, f"cinder://vol/{volume_id}", 3 * MIB - 2, 5) == data[3 * MIB - 2 : 3 * MIB + 3]
    assert _read(store, f"cinder://vol/{volume_id}") == data
    assert multi.size(stored.url) == len(data)
    for bad in ("cinder://not-a-volume", "rbd://x/y/z/snap", "cinder://"):
        with pytest.raises(StoreError):
            store.get(bad)
    _assert_detached(cinder_services, volume_id)

    # An import attempt writes under `<image id>.<task>.<generation>`: the volume still names the image.
    attempt = store.add(f"{iid}.0a1b2c3d.2", [b"copy"], max_size=BIG, expected_size=None, hash_algo="sha512")
    copy = cinder_services.client().volumes.get(_volume_id(attempt.url))
    assert (copy.name, copy.metadata["glance_image_id"], copy.metadata["image_size"]) == (f"image-{iid}", iid, "4")
    store.delete(attempt.url)


@pytest.mark.parametrize("attached", [False, True], ids=["detached", "attached"])
def test_unknown_size_grows_the_volume_by_a_gib(cinder_services: CinderServices, attached: bool) -> None:  # noqa: F811
    """Data of unknown size past the first GiB: the volume is extended (offline, or online with
    cinder_do_extend_attached) and the data is whole across the boundary."""
    store = _store(cinder_services, extend_attached=attached)
    block = os.urandom(MIB)
    count = 1024 + 3
    md5 = hashlib.md5()

    def source() -> Iterator[bytes]:
        for i in range(count):
            piece = block[i % 7 :] + block[: i % 7]
            md5.update(piece)
            yield piece

    stored = store.add(str(uuid.uuid4()), source(), max_size=BIG, expected_size=None, hash_algo="sha256")
    assert (stored.size, stored.checksum) == (count * MIB, md5.hexdigest())
    volume_id = _volume_id(stored.url)
    volume = cinder_services.client().volumes.get(volume_id)
    assert volume.size == 2
    assert volume.metadata["image_size"] == str(count * MIB)
    boundary = _read(store, stored.url, GIB - 5, 10)
    i = 1023
    assert boundary[:5] == (block[i % 7 :] + block[: i % 7])[-5:]
    assert boundary[5:] == (block[(i + 1) % 7 :] + block[: (i + 1) % 7])[:5]
    _assert_detached(cinder_services, volume_id)
    store.delete(stored.url)


def test_a_reader_closed_early_detaches(cinder_services: CinderServices) -> None:  # noqa: F811
    store = _store(cinder_services)
    data = os.urandom(9 * MIB)
    stored = store.add(str(uuid.uuid4()), [data], max_size=BIG, expected_size=None, hash_algo="sha512")
    volume_id = _volume_id(stored.url)

    reader = store.get(stored.url)
    assert next(reader) == data[: 4 * MIB]
    assert cinder_services.client().volumes.get(volume_id).status == "in-use"
    reader.close()  # type: ignore[attr-defined]  # the client went away mid-download
    _assert_detached(cinder_services, volume_id)

    never_read = store.get(stored.url, 100)
    never_read.close()  # type: ignore[attr-defined]
    _assert_detached(cinder_services, volume_id)


def test_a_volume_in_use_is_not_deleted(cinder_services: CinderServices) -> None:  # noqa: F811
    store = _store(cinder_services)
    stored = store.add(str(uuid.uuid4()), [b"kept"], max_size=BIG, expected_size=None, hash_algo="sha512")
    reader = store.get(stored.url)
    with pytest.raises(VolumeInUse):
        store.delete(stored.url)
    assert b"".join(reader) == b"kept"  # exhausted: detached
    store.delete(stored.url)
    with pytest.raises(NotFound):
        store.get(stored.url)


WRITER_SCRIPT = """
import json, sys, time
from glimpse.store.cinder import CinderStore
from glimpse.store.cinder_volumes import CinderAccess

access = CinderAccess(**json.loads(sys.argv[1]))
store = CinderStore("vol", access, node="node-dead", state_timeout=120)

def source():
    yield b"x" * (3 * 1024 * 1024)
    print("writing", flush=True)
    time.sleep(600)

store.add(sys.argv[2], source(), max_size=10**12, expected_size=None, hash_algo="sha512")
"""


def test_writer_killed_mid_upload_is_cleaned_up_by_recover(cinder_services: CinderServices) -> None:  # noqa: F811
    import dataclasses
    import json

    iid = str(uuid.uuid4())
    access = json.dumps(dataclasses.asdict(cinder_services.access()))
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER_SCRIPT), access, iid],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line == b"writing\n", proc.stderr.read().decode() if proc.stderr else ""
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    client = cinder_services.client()
    left = [v for v in client.volumes.list() if (v.metadata or {}).get("glance_image_id") == iid]
    assert len(left) == 1 and left[0].status == "in-use"  # attached by the dead writer

    store = _store(cinder_services, node="node-other")
    assert store.recover("node-1") == 0  # another node's (and a live writer's) volume is never touched
    started = time.monotonic()
    assert store.recover("node-dead") == 1  # its attachment removed, then the volume
    assert time.monotonic() - started < 120
    with pytest.raises(NotFound):
        store.get(f"cinder://{left[0].id}")
    assert store.recover("node-dead") == 0


def test_discard_partial_removes_one_images_volume(cinder_services: CinderServices) -> None:  # noqa: F811
    """A volume a dead writer left while it was still being created or written, found by image and node."""
    client = cinder_services.client()
    iid, other = str(uuid.uuid4()), str(uuid.uuid4())
    made = []
    for image_id in (iid, other):
        meta = {
            "glance_image_id": image_id,
            "image_size": "0",
            WRITER: CinderStore("x", cinder_services.access(), node="node-gone").node,
        }
        meta.update({UPLOAD: "abcd1234", WRITING: image_id})
        made.append(client.volumes.create(1, name=f"image-{image_id}", metadata=meta).id)
    store = _store(cinder_services)
    store.discard_partial(iid, "node-gone")
    ids = {v.id for v in client.volumes.list()}
    assert made[0] not in ids and made[1] in ids
    assert store.recover("node-gone") == 1
    assert made[1] not in {v.id for v in client.volumes.list()}


def test_block_storage_away_is_unavailable(cinder_services: CinderServices, ceph_cluster: CephCluster) -> None:  # noqa: F811
    from tests.contract.servers import free_port

    dead = CinderStore("vol", cinder_services.access(auth_url=f"http://127.0.0.1:{free_port()}/v3"), node="n")
    with pytest.raises(StoreUnavailable):
        dead.add(str(uuid.uuid4()), [b"x"], max_size=BIG, expected_size=None, hash_algo="sha512")
    with pytest.raises(StoreUnavailable):
        dead.get(f"cinder://{uuid.uuid4()}")
    wrong = CinderStore("vol", cinder_services.access(password="wrong"), node="n")
    with pytest.raises(StoreUnavailable):
        wrong.size(f"cinder://{uuid.uuid4()}")
