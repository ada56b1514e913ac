"""The database's records of which node caches which image (Glance's node_reference and cached_images), over a
real, migrated SQLite file, written by real node caches: published, read, removed every way, repaired by clean()."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from glimpse.cache.node_cache import NodeCache
from glimpse.db.cache_nodes import CacheNodeRecords
from glimpse.db.migrate import upgrade
from glimpse.db.models import CachedImageRow, NodeReferenceRow
from glimpse.db.session import SessionFactory, make_engine, make_sessionmaker
from glimpse.domain.entities import CacheExpectation

DATA = os.urandom(100_000)
EXPECTED = CacheExpectation(len(DATA), hashlib.md5(DATA).hexdigest(), "sha512", hashlib.sha512(DATA).hexdigest())
A, B = "http://node-a:9292", "http://node-b:9292"


@pytest.fixture
def sessions(tmp_path: Path) -> SessionFactory:
    engine = make_engine(f"sqlite:///{tmp_path / 'shared.db'}")
    upgrade(engine)
    return make_sessionmaker(engine)


def node(tmp_path: Path, sessions: SessionFactory, url: str | None, max_size: int = 10 * len(DATA)) -> NodeCache:
    return NodeCache(
        tmp_path / f"cache-{url and url[7:13]}", "cache.db", max_size, 3600, CacheNodeRecords(sessions, url)
    )


def fill(cache: NodeCache, image_id: str) -> None:
    writer = cache.writer(image_id, EXPECTED)
    assert writer is not None
    writer.write(DATA)
    assert writer.finish()


def rows(sessions: SessionFactory) -> list[tuple[str, str, int, int, str | None]]:
    with sessions.begin() as s:
        found = s.execute(
            select(
                CachedImageRow.image_id,
                NodeReferenceRow.node_reference_url,
                CachedImageRow.size,
                CachedImageRow.hits,
                CachedImageRow.checksum,
            ).join(NodeReferenceRow, NodeReferenceRow.node_reference_id == CachedImageRow.node_reference_id)
        ).all()
    return sorted((r[0], r[1], r[2], r[3], r[4]) for r in found)


def test_copies_are_recorded_per_node_and_listed(tmp_path: Path, sessions: SessionFactory) -> None:
    a, b = node(tmp_path, sessions, A), node(tmp_path, sessions, B)
    shared, only_a = str(uuid.uuid4()), str(uuid.uuid4())
    fill(a, shared)
    fill(a, only_a)
    fill(b, shared)
    md5 = EXPECTED.checksum
    assert rows(sessions) == sorted(
        [(shared, A, len(DATA), 0, md5), (only_a, A, len(DATA), 0, md5), (shared, B, len(DATA), 0, md5)]
    )
    records = CacheNodeRecords(sessions, None)  # a node that records nothing still lists every node's copies
    assert records.nodes(shared) == [A, B]
    assert records.nodes(only_a) == [A]
    assert records.nodes(str(uuid.uuid4())) == []
    chunks = a.read(shared, EXPECTED, 0, len(DATA))
    assert chunks is not None and b"".join(chunks) == DATA
    assert (shared, A, len(DATA), 1, md5) in rows(sessions)  # hits counted as Glance counts them
    with sessions.begin() as s:  # one node_reference per URL, however many copies
        assert sorted(s.scalars(select(NodeReferenceRow.node_reference_url))) == [A, B]


def test_every_way_a_copy_goes_removes_its_record(tmp_path: Path, sessions: SessionFactory) -> None:
    a = node(tmp_path, sessions, A, max_size=2 * len(DATA))
    ids = [str(uuid.uuid4()) for _ in range(5)]
    for image_id in ids[:3]:
        fill(a, image_id)  # the third is over image_cache_max_size: the least recently used is pruned
    assert [r[0] for r in rows(sessions)] == sorted(ids[1:3])
    assert a.delete_cached(ids[1])  # DELETE /v2/cache/{id}, and the sweep of a deactivated or deleted image
    assert [r[0] for r in rows(sessions)] == [ids[2]]
    fill(a, ids[3])
    assert a.delete_all_cached() == 2  # DELETE /v2/cache
    assert rows(sessions) == []
    fill(a, ids[4])
    with open(a.directory / ids[4], "r+b") as f:  # a damaged copy is set aside when read, and its record goes
        f.write(b"\0")
    assert a.read(ids[4], EXPECTED, 0, len(DATA)) is None
    assert rows(sessions) == []


def test_clean_repairs_the_records_a_crash_or_an_outage_left(tmp_path: Path, sessions: SessionFactory) -> None:
    a, b = node(tmp_path, sessions, A), node(tmp_path, sessions, B)
    kept, stale = str(uuid.uuid4()), str(uuid.uuid4())
    fill(a, kept)
    fill(b, kept)
    records = CacheNodeRecords(sessions, A)
    records.remove(kept)  # the row lost (written while the database was away)
    records.add(stale, 1, None)  # a row for a copy the node no longer has (killed between the two writes)
    assert set(rows(sessions)) == {(kept, B, len(DATA), 0, EXPECTED.checksum), (stale, A, 1, 0, None)}
    a.clean()
    assert [(r[0], r[1]) for r in rows(sessions)] == [(kept, A), (kept, B)]  # node B's rows untouched


def test_a_database_away_never_fails_the_cache(tmp_path: Path, sessions: SessionFactory) -> None:
    broken = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'missing' / 'no.db'}"))
    a = NodeCache(tmp_path / "cache", "cache.db", 10 * len(DATA), 3600, CacheNodeRecords(broken, A))
    image_id = str(uuid.uuid4())
    fill(a, image_id)
    chunks = a.read(image_id, EXPECTED, 0, len(DATA))
    assert chunks is not None and b"".join(chunks) == DATA
    assert a.delete_cached(image_id)
    a.clean()


def test_a_process_losing_the_race_to_create_its_node_takes_the_winners_row(sessions: SessionFactory) -> None:
    first, second = CacheNodeRecords(sessions, A), CacheNodeRecords(sessions, A)
    first.add("11111111-1111-1111-1111-111111111111", 10, None)
    looked: list[int | None] = []
    original = second._find

    def late_find() -> int | None:  # the second process looked before the first created the row
        looked.append(original() if looked else None)
        return looked[-1]

    second._find = late_find  # type: ignore[method-assign]
    second.add("22222222-2222-2222-2222-222222222222", 10, None)
    assert looked[0] is None and looked[1] is not None  # its INSERT failed on the unique URL, then it found the row
    with sessions.begin() as s:
        assert list(s.scalars(select(NodeReferenceRow.node_reference_url))) == [A]
    assert [r[1] for r in rows(sessions)] == [A, A]
