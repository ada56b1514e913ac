"""The contract of stores that take an image's data in pieces (domain/ports.py:PieceStore, for tus uploads), run on
real servers as the store contract is (test_store_contract.py): file, s3 (moto_server: parts of 5 MiB, and the
short ends of PATCHes staged in tail objects), swift (a real Swift: segments and a static large object manifest),
rbd (a real one-node Ceph: each PATCH written at its offset)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from glimpse.domain.ports import PieceStore, Store
from glimpse.store.http import HttpStore
from glimpse.store.s3 import MIB
from tests.contract.fixtures import ceph_cluster, s3_server, swift_server  # noqa: F401  (real servers, once per run)
from tests.contract.test_store_contract import Backend, _make, chunks_of, image_id, read

PIECE_STORES = ("file", "s3", "swift", "rbd")


@pytest.fixture(params=PIECE_STORES)
def pieceable(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return _make(request.param, request, tmp_path)


def pieces(backend: Backend) -> PieceStore:
    assert isinstance(backend.store, PieceStore)
    return backend.store


def appended(store: PieceStore, handle: str, *parts: bytes) -> str:
    for part in parts:
        handle = store.append_piece(handle, chunks_of(part, 256 * 1024))
    return handle


def test_the_stores_that_cannot_say_so() -> None:
    from glimpse.sources.egress import EgressPolicy

    store: Store = HttpStore("web", egress=EgressPolicy())
    assert not isinstance(store, PieceStore)


# Sizes of PATCHes: small ones (an S3 tail each), one crossing a part, one of several parts.
@pytest.mark.parametrize(
    "sizes",
    [[0], [100], [1, 2, 3], [3 * MIB, 3 * MIB, 1], [6 * MIB + 5, 2 * MIB, 11 * MIB]],
    ids=["empty", "one-small", "three-tiny", "tails-into-a-part", "parts-and-tails"],
)
def test_pieces_joined_read_back_whole(pieceable: Backend, sizes: list[int]) -> None:
    store = pieces(pieceable)
    iid = image_id()
    data = [os.urandom(n) for n in sizes]
    handle = appended(store, store.begin_pieces(iid, image_id()), *data)
    url = store.assemble(iid, [handle])
    assert read(pieceable.store, url) == b"".join(data)
    pieceable.store.delete(url)
    assert pieceable.contents() == []


def test_partial_uploads_are_joined_in_order(pieceable: Backend) -> None:
    store = pieces(pieceable)
    iid = image_id()
    parts = [os.urandom(n) for n in (2 * MIB + 1, 7 * MIB, 300)]
    handles = [appended(store, store.begin_pieces(iid, image_id()), part[:100], part[100:]) for part in parts]
    url = store.assemble(iid, handles)
    assert read(pieceable.store, url) == b"".join(parts)
    pieceable.store.delete(url)
    assert pieceable.contents() == []


@pytest.mark.parametrize("fail_after", [0, 1, 6])  # MiB of the PATCH already sent when its client goes away
def test_a_failed_piece_leaves_the_handle_whole(pieceable: Backend, fail_after: int) -> None:
    class ClientWentAway(Exception):
        pass

    def source() -> Iterator[bytes]:
        for _ in range(fail_after):
            yield os.urandom(MIB)
        raise ClientWentAway()

    store = pieces(pieceable)
    iid = image_id()
    kept = os.urandom(MIB + 3)
    handle = appended(store, store.begin_pieces(iid, image_id()), kept)
    with pytest.raises(ClientWentAway):
        store.append_piece(handle, source())
    url = store.assemble(iid, [handle])
    assert read(pieceable.store, url) == kept
    pieceable.store.delete(url)
    assert pieceable.contents() == []


def test_a_piece_never_committed_is_dropped_alone(pieceable: Backend) -> None:
    """A PATCH that lost its claim drops what it wrote; what the winner committed stays."""
    store = pieces(pieceable)
    iid = image_id()
    committed = appended(store, store.begin_pieces(iid, image_id()), os.urandom(3 * MIB))
    lost = appended(store, committed, os.urandom(6 * MIB))
    store.drop_pieces(lost, keep=committed)
    winner = os.urandom(100)
    final = appended(store, committed, winner)
    url = store.assemble(iid, [final])
    assert read(pieceable.store, url)[-100:] == winner
    assert len(read(pieceable.store, url)) == 3 * MIB + 100
    pieceable.store.delete(url)
    assert pieceable.contents() == []


def test_dropping_an_upload_leaves_nothing(pieceable: Backend) -> None:
    store = pieces(pieceable)
    handle = appended(store, store.begin_pieces(image_id(), image_id()), os.urandom(6 * MIB), os.urandom(10))
    store.drop_pieces(handle)
    assert pieceable.contents() == []


def test_a_handle_is_a_short_string(pieceable: Backend) -> None:
    """The handle goes into a database column: it says where the pieces are, never holds their bytes."""
    store = pieces(pieceable)
    handle = appended(store, store.begin_pieces(image_id(), image_id()), os.urandom(MIB), os.urandom(10))
    assert len(handle) < 2048
    json.loads(handle)
    store.drop_pieces(handle)
