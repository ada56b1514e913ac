"""glimpse.store.filesystem.FilesystemStore: atomic writes, hashing, caps, reads, deletes, recovery."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from glimpse.errors import BadRequest, NotFound, StoreError, TooLarge
from glimpse.store.filesystem import FilesystemStore
from glimpse.store.partials import node_tag

IMAGE = "5f0c0a3e-1b2c-4d5e-8f90-123456789abc"
BIG = 10**12


@pytest.fixture
def store(tmp_path: Path) -> FilesystemStore:
    return FilesystemStore("file", tmp_path / "images", "host1:9292")


def files(store: FilesystemStore) -> list[str]:
    return sorted(p.name for p in store.datadir.iterdir())


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_creates_its_folder(tmp_path: Path) -> None:
    FilesystemStore("file", tmp_path / "a" / "b", "n")
    assert (tmp_path / "a" / "b").is_dir()


@pytest.mark.parametrize("algo", ["sha512", "sha256"])
def test_add_streams_and_hashes(store: FilesystemStore, algo: str) -> None:
    data = os.urandom(300_000) + b"tail"
    stored = store.add(IMAGE, chunks_of(data, 65536), max_size=BIG, expected_size=None, hash_algo=algo)
    assert stored.size == len(data)
    assert stored.checksum == hashlib.md5(data).hexdigest()
    assert stored.hash_algo == algo
    assert stored.hash_value == hashlib.new(algo, data).hexdigest()
    assert stored.url == f"file://{store.datadir / IMAGE}"
    assert (store.datadir / IMAGE).read_bytes() == data
    assert files(store) == [IMAGE]  # no partial left behind


def test_add_empty_data(store: FilesystemStore) -> None:
    stored = store.add(IMAGE, iter([]), max_size=BIG, expected_size=0, hash_algo="sha512")
    assert stored.size == 0
    assert stored.checksum == hashlib.md5(b"").hexdigest()
    assert stored.hash_value == hashlib.sha512(b"").hexdigest()
    assert (store.datadir / IMAGE).read_bytes() == b""


def test_add_with_matching_expected_size(store: FilesystemStore) -> None:
    stored = store.add(IMAGE, [b"abc", b"", b"def"], max_size=6, expected_size=6, hash_algo="sha512")
    assert stored.size == 6
    assert (store.datadir / IMAGE).read_bytes() == b"abcdef"


def test_size_cap_raises_too_large_and_leaves_nothing(store: FilesystemStore) -> None:
    with pytest.raises(TooLarge):
        store.add(IMAGE, [b"a" * 10, b"b" * 10], max_size=15, expected_size=None, hash_algo="sha512")
    assert files(store) == []


def test_size_cap_stops_reading(store: FilesystemStore) -> None:
    pulled = []

    def source() -> Iterator[bytes]:
        for i in range(100):
            pulled.append(i)
            yield b"x" * 10

    with pytest.raises(TooLarge):
        store.add(IMAGE, source(), max_size=25, expected_size=None, hash_algo="sha512")
    assert len(pulled) == 3
    assert files(store) == []


@pytest.mark.parametrize("expected", [5, 7])
def test_expected_size_mismatch_raises_bad_request_and_leaves_nothing(store: FilesystemStore, expected: int) -> None:
    with pytest.raises(BadRequest):
        store.add(IMAGE, [b"abc", b"def"], max_size=BIG, expected_size=expected, hash_algo="sha512")
    assert files(store) == []


class Boom(Exception):
    pass


def test_iterator_failure_leaves_no_partial_and_no_final(store: FilesystemStore) -> None:
    def source() -> Iterator[bytes]:
        yield b"first"
        yield b"second"
        raise Boom("client went away")

    with pytest.raises(Boom):
        store.add(IMAGE, source(), max_size=BIG, expected_size=None, hash_algo="sha512")
    assert files(store) == []


def test_failed_rewrite_keeps_earlier_data(store: FilesystemStore) -> None:
    store.add(IMAGE, [b"old"], max_size=BIG, expected_size=None, hash_algo="sha512")

    def source() -> Iterator[bytes]:
        yield b"new"
        raise Boom

    with pytest.raises(Boom):
        store.add(IMAGE, source(), max_size=BIG, expected_size=None, hash_algo="sha512")
    assert files(store) == [IMAGE]
    assert (store.datadir / IMAGE).read_bytes() == b"old"


def test_data_is_under_a_partial_name_while_it_arrives(store: FilesystemStore) -> None:
    seen: list[list[str]] = []

    def source() -> Iterator[bytes]:
        yield b"abc"
        seen.append(files(store))
        yield b"def"

    store.add(IMAGE, source(), max_size=BIG, expected_size=None, hash_algo="sha512")
    assert len(seen[0]) == 1
    assert seen[0][0].startswith(f"{IMAGE}.{node_tag('host1:9292')}.")
    assert seen[0][0].endswith(".partial")
    assert files(store) == [IMAGE]


def test_get_whole(store: FilesystemStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # spans several read chunks
    stored = store.add(IMAGE, [data], max_size=BIG, expected_size=None, hash_algo="sha512")
    assert b"".join(store.get(stored.url)) == data


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [
        (0, None, b"0123456789"),
        (0, 4, b"0123"),
        (3, None, b"3456789"),
        (3, 4, b"3456"),
        (9, 1, b"9"),
        (9, 100, b"9"),
        (10, None, b""),
        (0, 0, b""),
    ],
)
def test_get_with_offset_and_length(store: FilesystemStore, offset: int, length: int | None, expected: bytes) -> None:
    stored = store.add(IMAGE, [b"0123456789"], max_size=BIG, expected_size=None, hash_algo="sha512")
    assert b"".join(store.get(stored.url, offset, length)) == expected


def test_get_missing_is_not_found(store: FilesystemStore) -> None:
    with pytest.raises(NotFound):
        store.get(f"file://{store.datadir / IMAGE}")


@pytest.mark.parametrize("url", ["http://example.com/x", "file:///etc/passwd", "file://relative/x"])
def test_foreign_locations_are_refused(store: FilesystemStore, url: str) -> None:
    with pytest.raises(StoreError):
        store.get(url)
    with pytest.raises(StoreError):
        store.delete(url)


def test_traversal_out_of_the_store_is_refused(store: FilesystemStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(b"s")
    with pytest.raises(StoreError):
        store.get(f"file://{store.datadir}/../secret")
    with pytest.raises(StoreError):
        store.delete(f"file://{store.datadir}/../secret")
    assert secret.exists()


def test_delete_is_idempotent(store: FilesystemStore) -> None:
    stored = store.add(IMAGE, [b"abc"], max_size=BIG, expected_size=None, hash_algo="sha512")
    store.delete(stored.url)
    assert files(store) == []
    store.delete(stored.url)  # already gone: not an error
    with pytest.raises(NotFound):
        store.get(stored.url)


def test_delete_removes_only_that_image(store: FilesystemStore) -> None:
    other = "00000000-0000-0000-0000-000000000001"
    a = store.add(IMAGE, [b"a"], max_size=BIG, expected_size=None, hash_algo="sha512")
    store.add(other, [b"b"], max_size=BIG, expected_size=None, hash_algo="sha512")
    store.delete(a.url)
    assert files(store) == [other]


def test_size(store: FilesystemStore) -> None:
    stored = store.add(IMAGE, [b"abcd"], max_size=BIG, expected_size=None, hash_algo="sha512")
    assert store.size(stored.url) == 4
    store.delete(stored.url)
    with pytest.raises(NotFound):
        store.size(stored.url)


def _partial(store: FilesystemStore, image_id: str, node: str, tag: str = "0123abcd") -> Path:
    path = store.datadir / f"{image_id}.{node_tag(node)}.{tag}.partial"
    path.write_bytes(b"partial")
    return path


def test_recover_removes_only_that_nodes_partials(store: FilesystemStore) -> None:
    other = "00000000-0000-0000-0000-000000000002"
    done = store.add(IMAGE, [b"complete"], max_size=BIG, expected_size=None, hash_algo="sha512")
    mine1 = _partial(store, other, "host1:9292", "aaaaaaaa")
    mine2 = _partial(store, "00000000-0000-0000-0000-000000000003", "host1:9292", "bbbbbbbb")
    theirs = _partial(store, other, "host2:9292")
    other_port = _partial(store, other, "host1:19292")
    assert store.recover("host1:9292") == 2
    assert not mine1.exists()
    assert not mine2.exists()
    assert theirs.exists()
    assert other_port.exists()
    assert (store.datadir / IMAGE).read_bytes() == b"complete"
    assert b"".join(store.get(done.url)) == b"complete"
    assert store.recover("host1:9292") == 0


def test_recover_another_node(store: FilesystemStore) -> None:
    theirs = _partial(store, IMAGE, "host2:9292")
    mine = _partial(store, IMAGE, "host1:9292")
    assert store.recover("host2:9292") == 1
    assert not theirs.exists()
    assert mine.exists()


def test_recover_does_not_touch_a_node_whose_name_ends_with_this_one(store: FilesystemStore) -> None:
    # Node names are hostname:port; "glance:9292" and "east.glance:9292" are different nodes sharing a store.
    theirs = _partial(store, IMAGE, "east.glance:9292")
    mine = _partial(store, IMAGE, "glance:9292")
    assert store.recover("glance:9292") == 1
    assert not mine.exists()
    assert theirs.exists()


def test_partials_written_by_add_are_recoverable(store: FilesystemStore) -> None:
    def source() -> Iterator[bytes]:
        yield b"abc"
        # Simulate a crash: while data is arriving, the partial file is what a restart finds.
        assert store.recover("host1:9292") == 1
        yield b"def"

    with pytest.raises(StoreError):
        store.add(IMAGE, source(), max_size=BIG, expected_size=None, hash_algo="sha512")
    assert files(store) == []  # and no final file was published
