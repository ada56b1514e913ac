"""The recycle bin's records over a real, migrated SQLite file: binning, listing, usage, restore, expire, races."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from glimpse.db import scrub_queue
from glimpse.db.migrate import upgrade
from glimpse.db.quotas import QuotaRepository
from glimpse.db.recycle_bin import RecycleBinRepository
from glimpse.db.repositories import ImageRepository
from glimpse.db.scrub_queue import ScrubQueue, restored_status
from glimpse.db.session import SessionFactory, make_engine, make_sessionmaker
from glimpse.domain.entities import Image, Location
from glimpse.errors import Conflict, NotFound, TooLarge

STALE = timedelta(seconds=30)
HOUR = timedelta(hours=1)


def _no_check(copies: list[Location]) -> None:
    pass


@dataclass
class Db:
    sessions: SessionFactory
    repo: ImageRepository
    queue: ScrubQueue
    bin: RecycleBinRepository
    quotas: QuotaRepository

    def image(self, owner: str = "p", size: int = 1000, data: bool = True) -> str:
        image_id = str(uuid.uuid4())
        self.repo.add(Image(id=image_id, owner=owner, properties={"k": "v"}, tags=["t"], disk_format="raw",
                            container_format="bare"))  # fmt: skip
        if data:
            self.repo.transition(image_id, "queued", "saving")
            self.repo.activate(image_id, "saving", Location(url=f"file:///s/{image_id}"), size=size, checksum="x")
        return image_id


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Db]:
    engine = make_engine(f"sqlite:///{tmp_path / 'glimpse.db'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    yield Db(sessions, ImageRepository(sessions), ScrubQueue(sessions), RecycleBinRepository(sessions),
             QuotaRepository(sessions))  # fmt: skip
    engine.dispose()


def test_a_binned_image_keeps_everything_and_is_restored_to_its_status(db: Db) -> None:
    active, queued = db.image(), db.image(data=False)
    db.repo.transition(active, "active", "deactivated")
    db.repo.add_member(active, "friend", 10)
    for image_id in (active, queued):
        assert db.repo.delete(image_id, keep_for=HOUR) == []
        with pytest.raises(NotFound):
            db.repo.get(image_id)
    binned = {b.image.id: b for b in db.bin.binned("p", 10)}
    assert binned[active].former_status == "deactivated" and binned[queued].former_status == "queued"
    assert binned[active].image.properties == {"k": "v"} and binned[active].image.tags == ["t"]
    assert db.bin.binned("other", 10) == []
    assert db.queue.restore(active, STALE, _no_check, from_bin=True) == "deactivated"
    assert db.queue.restore(queued, STALE, _no_check, from_bin=True) == "queued"
    assert db.repo.get(active).locations[0].url == f"file:///s/{active}"
    assert [m.member_id for m in db.repo.members(active)] == ["friend"]
    with pytest.raises(NotFound, match="not in the recycle bin"):
        db.queue.restore(active, STALE, _no_check, from_bin=True)


def test_binned_data_counts_in_the_quota_until_it_is_gone(db: Db) -> None:
    image_id = db.image(owner="q", size=5000)
    db.repo.delete(image_id, keep_for=HOUR)
    usage = db.quotas.usage("q")
    assert (usage.image_count_total, usage.image_size_total) == (0, 5000)
    assert (usage.image_count_binned, usage.image_size_binned) == (1, 5000)
    db.queue.expire(image_id)  # out of the bin: no longer listed, but its data is still there
    assert db.bin.binned("q", 10) == [] and db.quotas.usage("q").image_size_total == 5000
    assert image_id in db.queue.due(timedelta(days=365))
    claim = db.queue.claim(image_id, "node", STALE)
    assert claim is not None
    for location_id, _ in db.queue.start_deleting(claim):
        db.queue.copy_deleted(claim, location_id)
    assert db.queue.finish(claim) == "deleted"
    assert db.quotas.usage("q").image_size_total == 0


def test_a_binned_image_is_due_only_when_its_time_ends(db: Db) -> None:
    image_id = db.image()
    db.repo.delete(image_id, keep_for=HOUR)
    assert image_id not in db.queue.due(timedelta(0))  # scrub_time does not apply to binned images
    db.repo.delete(other := db.image(), keep_for=timedelta(0))
    assert other in db.queue.due(timedelta(days=1))


def test_restore_into_a_full_image_count_is_refused_and_leaves_the_image_in_the_bin(db: Db) -> None:
    image_id = db.image(owner="full")
    db.repo.delete(image_id, keep_for=HOUR)
    db.image(owner="full")
    with pytest.raises(TooLarge, match="limit of 1 images"):
        db.queue.restore(image_id, STALE, _no_check, from_bin=True, max_images=1)
    assert [b.image.id for b in db.bin.binned("full", 10)] == [image_id]
    assert db.queue.restore(image_id, STALE, _no_check, from_bin=True, max_images=2) == "active"


def test_restore_of_data_a_scrubber_started_removing_is_refused(db: Db) -> None:
    image_id = db.image()
    db.repo.delete(image_id, keep_for=HOUR)
    claim = db.queue.claim(image_id, "node", timedelta(0))
    assert claim is not None
    db.queue.start_deleting(claim)
    db.queue.release(claim)
    with pytest.raises(Conflict, match="already removed"):
        db.queue.restore(image_id, timedelta(0), _no_check, from_bin=True)


def _race(db: Db, image_id: str) -> dict[str, str]:
    """A restore and a purge (its first step: out of the bin) of one image at once; who won each."""
    outcomes: dict[str, str] = {}
    start = threading.Barrier(2)

    def attempt(name: str, act: Callable[[], object]) -> None:
        start.wait()
        try:
            act()
            outcomes[name] = "won"
        except NotFound:
            outcomes[name] = "lost"

    threads = [
        threading.Thread(target=attempt, args=("restore", lambda: db.queue.restore(image_id, STALE, _no_check,
                                                                                   from_bin=True))),
        threading.Thread(target=attempt, args=("purge", lambda: db.queue.expire(image_id))),
    ]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_restore_and_purge_racing_on_two_connections_one_wins(db: Db) -> None:
    for _ in range(5):
        image_id = db.image()
        db.repo.delete(image_id, keep_for=HOUR)
        outcomes = _race(db, image_id)
        assert sorted(outcomes.values()) == ["lost", "won"], outcomes
        restored = outcomes["restore"] == "won"
        assert (db.repo.get(image_id).status == "active") if restored else (db.bin.binned("p", 100) == [])


def test_a_purged_image_is_out_of_the_bin_for_a_node_whose_clock_lags(db: Db, monkeypatch: pytest.MonkeyPatch) -> None:
    """The purge ran on one node; the restore runs on another whose clock is a few seconds behind (or read its
    clock before waiting on the purge's row lock): it must still find the image gone, not bring it back while
    the purge goes on to delete its data."""
    image_id = db.image()
    db.repo.delete(image_id, keep_for=HOUR)
    db.queue.expire(image_id)
    real = scrub_queue.utcnow
    monkeypatch.setattr(scrub_queue, "utcnow", lambda: real() - timedelta(seconds=5))
    with pytest.raises(NotFound, match="not in the recycle bin"):
        db.queue.restore(image_id, STALE, _no_check, from_bin=True)
    assert db.bin.binned("p", 100) == []


def test_retention_per_project(db: Db) -> None:
    assert db.bin.retention("p") is None
    db.bin.set_retention("p", 60)
    db.bin.set_retention("p", 120)
    db.bin.set_retention("z", 0)
    assert db.bin.all_retention() == {"p": 120, "z": 0}
    db.bin.set_retention("p", None)
    assert db.bin.retention("p") is None


def test_restored_status() -> None:
    assert [restored_status(s) for s in (None, "active", "deactivated", "saving", "importing", "queued")] == [
        "active", "active", "deactivated", "queued", "queued", "queued",
    ]  # fmt: skip
