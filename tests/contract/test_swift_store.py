"""What the swift store does beyond the contract, on the real all-in-one Swift of tests/contract/servers.py:
static large objects and their segments, Glance's dynamic large objects, replacing, and the partial
segments of a writer that died."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator

import pytest

from glimpse.errors import NotFound, StoreError, StoreUnavailable, TooLarge
from glimpse.store.partials import node_tag
from glimpse.store.swift import MIB, SwiftStore
from tests.contract.fixtures import swift_server  # noqa: F401  (a real Swift, once per run)
from tests.contract.leftovers import SEGMENT, orphan_segments
from tests.contract.servers import SwiftServer, free_port
from tests.contract.test_store_contract import BIG, chunks_of, read, swift_store


@pytest.fixture
def swift(request: pytest.FixtureRequest) -> SwiftServer:
    return request.getfixturevalue("swift_server")  # type: ignore[no-any-return]


def names(server: SwiftServer, container: str) -> list[str]:
    conn = server.connection()
    try:
        return sorted(o["name"] for o in conn.get_container(container, full_listing=True)[1])
    finally:
        conn.close()


def orphans(server: SwiftServer, container: str) -> list[str]:
    conn = server.connection()
    try:
        return orphan_segments(conn, container)
    finally:
        conn.close()


def add(store: SwiftStore, image_id: str, data: bytes, expected_size: int | None = None) -> str:
    return store.add(
        image_id, chunks_of(data, 300 * 1024), max_size=BIG, expected_size=expected_size, hash_algo="sha512"
    ).url


def test_a_large_image_is_a_static_large_object_of_chunk_sized_segments(swift: SwiftServer) -> None:
    store = swift_store(swift)
    data = os.urandom(11 * MIB + 5)
    iid = str(uuid.uuid4())
    url = add(store, iid, data)
    conn = swift.connection()
    try:
        headers = conn.head_object(store.container, iid)
        segments = [n for n in names(swift, store.container) if n != iid]
        sizes = [int(conn.head_object(store.container, n)["content-length"]) for n in segments]
    finally:
        conn.close()
    assert headers["x-static-large-object"] == "True"
    assert int(headers["content-length"]) == len(data)
    assert len(segments) == 6
    assert all(SEGMENT.match(n) and n.startswith(f"{iid}-{node_tag('node-1')}-") for n in segments)
    assert sizes == [2 * MIB] * 5 + [MIB + 5]
    assert url == f"swift+http://127.0.0.1:{swift.port}/auth/v1.0/{store.container}/{iid}"
    # Ranges across segment boundaries are served by Swift.
    for offset, length in [(2 * MIB - 3, 7), (0, 4 * MIB + 1), (10 * MIB, None), (11 * MIB + 4, 1)]:
        end = None if length is None else offset + length
        assert read(store, url, offset, length) == data[offset:end]
    store.delete(url)
    assert names(swift, store.container) == []


def test_a_small_or_announced_image_is_one_plain_object(swift: SwiftServer) -> None:
    store = swift_store(swift)
    small, announced = str(uuid.uuid4()), str(uuid.uuid4())
    add(store, small, os.urandom(MIB))
    data = os.urandom(5 * MIB)  # at large_object_size, announced: one streamed PUT
    url = add(store, announced, data, expected_size=len(data))
    assert names(swift, store.container) == sorted([small, announced])
    assert read(store, url) == data


def test_replacing_a_segmented_image_removes_the_old_segments(swift: SwiftServer) -> None:
    store = swift_store(swift)
    iid = str(uuid.uuid4())
    add(store, iid, os.urandom(7 * MIB))
    data = os.urandom(9 * MIB)
    url = add(store, iid, data)
    assert read(store, url) == data
    assert len(names(swift, store.container)) == 1 + 5
    assert orphans(swift, store.container) == []
    url = add(store, iid, b"small now")
    assert names(swift, store.container) == [iid]
    assert read(store, url) == b"small now"


def test_a_failed_replacement_keeps_the_segmented_image(swift: SwiftServer) -> None:
    store = swift_store(swift)
    iid = str(uuid.uuid4())
    data = os.urandom(7 * MIB)
    url = add(store, iid, data)
    with pytest.raises(TooLarge):
        store.add(iid, chunks_of(os.urandom(9 * MIB), MIB), max_size=8 * MIB, expected_size=None, hash_algo="sha512")
    assert read(store, url) == data
    assert orphans(swift, store.container) == []


def test_a_dead_writers_segments_are_discarded_and_the_published_ones_kept(swift: SwiftServer) -> None:
    container = f"glimpse-{uuid.uuid4().hex[:12]}"
    store = swift_store(swift, container, node="node-a")
    iid, other = str(uuid.uuid4()), str(uuid.uuid4())
    data = os.urandom(6 * MIB)
    url = add(store, iid, data)  # published by node-a, in segments
    published = names(swift, container)
    conn = swift.connection()
    try:  # what node-a was writing when it died: a replacement of iid, and another image
        for image in (iid, other):
            for n in (1, 2):
                conn.put_object(container, f"{image}-{node_tag('node-a')}-0badc0de-{n:05d}", b"partial")
        conn.put_object(container, f"{other}-{node_tag('node-b')}-12345678-00001", b"node-b is alive")
    finally:
        conn.close()
    store.discard_partial(iid, "node-a")
    left = names(swift, container)
    assert set(published) <= set(left) and not any(n.startswith(f"{iid}-") and "0badc0de" in n for n in left)
    assert read(store, url) == data
    assert store.recover("node-a") == 1
    assert names(swift, container) == sorted([*published, f"{other}-{node_tag('node-b')}-12345678-00001"])
    assert store.recover("node-a") == 0


def test_glances_dynamic_large_objects_are_read_and_deleted_with_their_segments(swift: SwiftServer) -> None:
    store = swift_store(swift)
    store.add(str(uuid.uuid4()), [b"x"], max_size=BIG, expected_size=None, hash_algo="sha512")  # creates the container
    iid = str(uuid.uuid4())
    parts = [os.urandom(MIB) for _ in range(3)]
    conn = swift.connection()
    try:  # Glance's layout: <image>-00001... beside the manifest, X-Object-Manifest: <container>/<image>-
        for n, part in enumerate(parts, start=1):
            conn.put_object(store.container, f"{iid}-{n:05d}", part)
        conn.put_object(store.container, iid, b"", headers={"X-Object-Manifest": f"{store.container}/{iid}-"})
    finally:
        conn.close()
    glance_url = f"swift+http://test:tester:testing@127.0.0.1:{swift.port}/auth/v1.0/{store.container}/{iid}"
    data = b"".join(parts)
    assert store.size(glance_url) == len(data)
    assert read(store, glance_url) == data
    assert read(store, glance_url, MIB - 2, 4) == data[MIB - 2 : MIB + 2]
    store.delete(glance_url)
    assert not [n for n in names(swift, store.container) if n.startswith(iid)]


def test_hashes_are_those_of_the_data(swift: SwiftServer) -> None:
    store = swift_store(swift)
    data = os.urandom(8 * MIB + 1)
    stored = store.add(
        str(uuid.uuid4()), chunks_of(data, 777_777), max_size=BIG, expected_size=None, hash_algo="sha256"
    )
    assert (stored.checksum, stored.hash_value) == (hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest())


def test_a_missing_container_is_an_error_unless_created_on_put(swift: SwiftServer) -> None:
    store = SwiftStore(
        "cold",
        node="n",
        auth_address=swift.auth_url,
        user=swift.user,
        key=swift.key,
        container=f"absent-{uuid.uuid4().hex[:8]}",
    )
    with pytest.raises(StoreError, match="swift_store_create_container_on_put"):
        store.add(str(uuid.uuid4()), [b"x"], max_size=BIG, expected_size=None, hash_algo="sha512")


def test_wrong_credentials_are_reported(swift: SwiftServer) -> None:
    store = SwiftStore("cold", node="n", auth_address=swift.auth_url, user="test:tester", key="wrong", container="c")
    with pytest.raises((StoreError, StoreUnavailable), match=r"401|Unauthorized"):
        store.size(store.url_for("anything"))


def test_an_unreachable_swift_is_unavailable_not_missing() -> None:
    store = SwiftStore(
        "cold",
        node="n",
        auth_address=f"http://127.0.0.1:{free_port()}/auth/v1.0",
        user="test:tester",
        key="testing",
        container="c",
        retries=0,
    )
    with pytest.raises(StoreUnavailable):
        store.get(store.url_for("x"))

    def source() -> Iterator[bytes]:
        yield b"data"

    with pytest.raises(StoreUnavailable):
        store.add("x", source(), max_size=BIG, expected_size=None, hash_algo="sha512")


def test_other_locations_are_refused(swift: SwiftServer) -> None:
    store = swift_store(swift)
    with pytest.raises(StoreError):
        store.get("s3+http://127.0.0.1/bucket/key")
    with pytest.raises(NotFound):
        store.get(f"swift+config://ref1/{store.container}/{uuid.uuid4()}")
