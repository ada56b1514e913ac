"""glimpse.db.scrub_queue over a real, migrated SQLite file: claims, takeover, restore against a scrubber."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from glimpse.db.migrate import upgrade
from glimpse.db.models import ImageRow, LocationRow, PropertyRow, utcnow
from glimpse.db.purge import purge
from glimpse.db.repositories import ImageRepository
from glimpse.db.scrub_queue import ScrubQueue
from glimpse.db.session import SessionFactory, make_engine, make_sessionmaker
from glimpse.domain.entities import Image, Location
from glimpse.errors import ClaimLost, Conflict, NotFound

STALE = timedelta(seconds=0.3)


def _no_check(copies: list[Location]) -> None:
    pass


@dataclass
class Db:
    sessions: SessionFactory
    repo: ImageRepository
    queue: ScrubQueue

    def image(self, copies: int = 1, delayed: bool = True) -> str:
        image_id = str(uuid.uuid4())
        self.repo.add(Image(id=image_id, owner="p", properties={"k": "v"}, disk_format="raw", container_format="bare"))
        self.repo.transition(image_id, "queued", "saving")
        locations = [Location(url=f"file:///s{i}/{image_id}", metadata={"store": f"s{i}"}) for i in range(copies)]
        self.repo.activate(image_id, "saving", locations[0], extra=locations[1:], size=3, checksum="x")
        self.repo.delete(image_id, delayed=delayed)
        return image_id

    def statuses(self, image_id: str) -> list[str]:
        with self.sessions.begin() as s:
            return list(s.scalars(select(LocationRow.status).where(LocationRow.image_id == image_id)))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Db]:
    engine = make_engine(f"sqlite:///{tmp_path / 'glimpse.db'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    yield Db(sessions, ImageRepository(sessions), ScrubQueue(sessions))
    engine.dispose()


def test_delayed_delete_keeps_the_data_and_hides_the_image(db: Db) -> None:
    image_id = db.image(copies=2)
    assert db.statuses(image_id) == ["pending_delete", "pending_delete"]
    assert db.queue.due(timedelta(0)) == [image_id]
    assert db.queue.due(timedelta(hours=1)) == []  # scrub_time not over yet
    queued = str(uuid.uuid4())
    db.repo.add(Image(id=queued, owner="p"))
    db.repo.delete(queued, delayed=True)  # nothing to keep: deleted at once
    assert queued not in db.queue.due(timedelta(0))


def test_one_claim_at_a_time_and_takeover_after_a_silent_scrubber(db: Db) -> None:
    image_id = db.image(copies=2)
    first = db.queue.claim(image_id, "node-a/1", STALE)
    assert first is not None
    assert db.queue.claim(image_id, "node-b/2", STALE) is None  # fresh heartbeat: not taken
    assert [loc.url for _, loc in db.queue.start_deleting(first)] == [
        f"file:///s0/{image_id}",
        f"file:///s1/{image_id}",
    ]
    (done_id, _), _ = db.queue.start_deleting(first)
    db.queue.copy_deleted(first, done_id)
    # Killed half-way: one copy deleted, one `deleting`. Nobody can restore it any more.
    with pytest.raises(Conflict, match="already removed"):
        time.sleep(STALE.total_seconds() + 0.1)
        db.queue.restore(image_id, STALE, _no_check)
    second = db.queue.claim(image_id, "node-b/2", STALE)
    assert second is not None
    left = db.queue.start_deleting(second)
    assert len(left) == 1  # the copy the dead scrubber had not finished
    with pytest.raises(ClaimLost):
        db.queue.copy_deleted(first, left[0][0])  # the first one, if it wakes up, is fenced out
    db.queue.copy_deleted(second, left[0][0])
    assert db.queue.finish(second) == "deleted"
    assert db.statuses(image_id) == ["deleted", "deleted"]
    with db.sessions.begin() as s:
        assert s.scalar(select(PropertyRow.id).where(PropertyRow.image_id == image_id)) is None
    assert db.queue.due(timedelta(0)) == []


def test_restore_refused_while_a_scrubber_holds_it_and_fences_a_stale_one(db: Db) -> None:
    image_id = db.image()
    claim = db.queue.claim(image_id, "node-a/1", STALE)
    assert claim is not None
    with pytest.raises(Conflict, match="is deleting its data now"):
        db.queue.restore(image_id, STALE, _no_check)
    time.sleep(STALE.total_seconds() + 0.1)  # the scrubber stalls before touching any data
    db.queue.restore(image_id, STALE, _no_check)
    with pytest.raises(ClaimLost):
        db.queue.start_deleting(claim)
    image = db.repo.get(image_id)
    assert (image.status, image.properties, [loc.url for loc in image.locations]) == (
        "active",
        {"k": "v"},
        [f"file:///s0/{image_id}"],
    )
    with pytest.raises(Conflict, match="from active"):
        db.queue.restore(image_id, STALE, _no_check)


def test_restore_check_can_refuse(db: Db) -> None:
    image_id = db.image()

    def missing(copies: list[Location]) -> None:
        raise Conflict(f"missing {len(copies)}")

    with pytest.raises(Conflict, match="missing 1"):
        db.queue.restore(image_id, STALE, missing)
    assert db.statuses(image_id) == ["pending_delete"]


def test_a_store_copy_deleted_under_delayed_delete_waits_for_the_scrubber(db: Db) -> None:
    image_id = str(uuid.uuid4())
    db.repo.add(Image(id=image_id, owner="p"))
    db.repo.transition(image_id, "queued", "saving")
    a, b = (Location(url=f"file:///{n}/{image_id}", metadata={"store": n}) for n in ("a", "b"))
    db.repo.activate(image_id, "saving", a, extra=[b], size=3, checksum="x")
    db.repo.remove_location(image_id, b.url, delayed=True)
    assert [loc.url for loc in db.repo.get(image_id).locations] == [a.url]
    assert db.queue.due(timedelta(hours=1)) == [image_id]  # no scrub_time for a live image's copy
    claim = db.queue.claim(image_id, "n/1", STALE)
    assert claim is not None
    ((loc_id, loc),) = db.queue.start_deleting(claim)
    assert loc.url == b.url
    db.queue.copy_deleted(claim, loc_id)
    assert db.queue.finish(claim) is None  # the image itself stays active
    assert db.statuses(image_id) == ["active"]
    assert db.repo.get(image_id).status == "active"


def test_a_store_copy_deleted_at_once_stays_recorded_until_its_data_is_gone(db: Db) -> None:
    image_id = str(uuid.uuid4())
    db.repo.add(Image(id=image_id, owner="p"))
    db.repo.transition(image_id, "queued", "saving")
    a, b, c = (Location(url=f"file:///{n}/{image_id}", metadata={"store": n}) for n in ("a", "b", "c"))
    db.repo.activate(image_id, "saving", a, extra=[b, c], size=3, checksum="x")
    assert db.repo.remove_location(image_id, b.url) is True  # its data is to be removed now
    assert db.repo.remove_location(image_id, c.url) is True
    assert [loc.url for loc in db.repo.get(image_id).locations] == [a.url]
    assert sorted(db.statuses(image_id)) == ["active", "deleting", "deleting"]
    db.repo.data_removed(image_id, b.url)  # the request removed b's data; c's store failed
    assert sorted(db.statuses(image_id)) == ["active", "deleting"]  # a live image forgets a removed copy
    assert db.queue.due(timedelta(hours=1)) == [image_id]
    claim = db.queue.claim(image_id, "n/1", STALE)
    assert claim is not None
    ((loc_id, loc),) = db.queue.start_deleting(claim)
    assert loc.url == c.url
    db.queue.copy_deleted(claim, loc_id)
    assert db.queue.finish(claim) is None
    assert db.statuses(image_id) == ["active"] and db.repo.get(image_id).status == "active"


def test_an_immediate_delete_records_its_copies_until_their_data_is_gone(db: Db) -> None:
    # A process killed right after the delete commits, or a store that fails, leaves the copies for the scrubber.
    image_id = db.image(copies=2, delayed=False)
    assert db.statuses(image_id) == ["deleting", "deleting"]
    assert db.queue.due(timedelta(hours=1)) == [image_id]  # no scrub_time: the image is already deleted
    db.repo.data_removed(image_id, f"file:///s0/{image_id}")  # the deleting request removed this one
    assert sorted(db.statuses(image_id)) == ["deleted", "deleting"]
    claim = db.queue.claim(image_id, "node-a/1", STALE)
    assert claim is not None
    [(location_id, location)] = db.queue.start_deleting(claim)
    assert location.url == f"file:///s1/{image_id}"
    db.queue.copy_deleted(claim, location_id)
    assert db.queue.finish(claim) is None  # it was deleted already: no status change
    assert db.statuses(image_id) == ["deleted", "deleted"]
    assert db.queue.due(timedelta(0)) == []
    assert db.repo.referenced_urls() == set()  # `glimpse store gc` would now see the data as unknown
    with pytest.raises(NotFound):
        db.repo.get(image_id)


def test_db_purge_keeps_a_copy_whose_data_is_still_to_remove(db: Db) -> None:
    image_id = db.image(copies=2, delayed=False)
    db.repo.data_removed(image_id, f"file:///s0/{image_id}")
    with db.sessions.begin() as s:
        s.execute(update(ImageRow).where(ImageRow.id == image_id).values(deleted_at=utcnow() - timedelta(days=40)))
    assert purge(db.sessions, 30, -1)["image_locations"] == 1  # only the copy whose data is gone
    assert db.statuses(image_id) == ["deleting"]
    assert db.queue.due(timedelta(0)) == [image_id]  # still the scrubber's to remove


def test_leftovers_are_the_copies_deletes_left_never_delayed_deletes_data(db: Db) -> None:
    left = db.image(copies=1, delayed=False)  # its store failed: still `deleting`
    waiting = db.image(copies=1, delayed=True)  # delayed delete: `glimpse scrub`'s, after scrub_time
    done = db.image(copies=1, delayed=False)
    db.repo.data_removed(done, f"file:///s0/{done}")
    assert db.queue.leftovers(timedelta(hours=1)) == []  # too recent: the deleting request may still be at it
    with db.sessions.begin() as s:
        long_ago = utcnow() - timedelta(hours=2)
        s.execute(update(ImageRow).where(ImageRow.id.in_([left, waiting, done])).values(updated_at=long_ago))
    assert db.queue.leftovers(timedelta(hours=1)) == [left]
    assert sorted(db.queue.due(timedelta(0))) == sorted([left, waiting])  # a scrubber takes both
