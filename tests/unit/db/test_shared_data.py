"""Reference counts of deduplicated data (db/shared_data.py) on real databases (SQLite file, PostgreSQL and MariaDB
on loopback): publishing links twins, forgetting a copy keeps data others use, and the races between nodes
(twins published at once, a delete racing a publish) neither lose data nor leak it."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from glimpse.db.models import SharedDataPinRow, SharedDataRow
from glimpse.db.repositories import ImageRepository
from glimpse.db.scrub_queue import ScrubQueue
from glimpse.db.session import make_sessionmaker
from glimpse.db.shared_data import SharedData
from glimpse.domain.entities import DataKey, Image, Location
from glimpse.errors import Conflict

STORE = "s1"


@pytest.fixture(scope="module")
def engine(every_engine: Engine) -> Engine:
    return every_engine


class World:
    def __init__(self, engine: Engine) -> None:
        self.sessions = make_sessionmaker(engine)
        self.repo = ImageRepository(self.sessions)
        self.shared = SharedData(self.sessions)
        self.data = os.urandom(64)  # every test its own data: the tests share one database

    @property
    def sha512(self) -> str:
        return hashlib.sha512(self.data).hexdigest()

    def image(self, owner: str = "p1", **fields: Any) -> str:
        return self.repo.add(Image(id=str(uuid.uuid4()), owner=owner, disk_format="raw", container_format="bare",
                                   **fields)).id  # fmt: skip

    def publish(
        self, image_id: str, shared: bool = True, claim: str | None = None, url: str | None = None
    ) -> tuple[str, list[Location]]:
        """An upload as ImageData runs it: written under the image's own name (or received for the pinned `url`),
        then activated; returns the URL recorded and the copies made redundant."""
        claim = claim or self.repo.begin_upload(image_id, None, "node", None)
        own = Location(url=url or f"file:///data/{image_id}", metadata={"store": STORE})
        redundant = self.repo.activate(
            image_id, "saving", own, if_claim=claim, shared=shared, size=len(self.data), checksum="c",
            os_hash_algo="sha512", os_hash_value=self.sha512,
        )  # fmt: skip
        return self.repo.get(image_id).locations[0].url, redundant

    def row(self, store: str = STORE) -> SharedDataRow | None:
        with self.sessions() as s:
            query = select(SharedDataRow).where(SharedDataRow.sha512 == self.sha512, SharedDataRow.store == store)
            return s.scalars(query).one_or_none()

    def key(self) -> DataKey:
        return DataKey(STORE, len(self.data), self.sha512)


@pytest.fixture
def world(engine: Engine) -> World:
    return World(engine)


def test_a_twin_links_to_the_data_stored_first(world: World) -> None:
    first, second = world.image(), world.image(owner="p2")
    url1, redundant1 = world.publish(first)
    url2, redundant2 = world.publish(second)
    assert url1 == url2 == f"file:///data/{first}"
    assert redundant1 == [] and [loc.url for loc in redundant2] == [f"file:///data/{second}"]
    row = world.row()
    assert row is not None and row.refs == 2 and row.url == url1


def test_the_data_stays_until_its_last_image_goes(world: World) -> None:
    images = [world.image(owner=f"p{i}") for i in range(3)]
    for image_id in images:
        world.publish(image_id)
    shared_url = world.repo.get(images[0]).locations[0].url
    assert world.repo.delete(images[0]) == []  # the first image's own name, but others use it
    assert world.repo.delete(images[2]) == []
    row = world.row()
    assert row is not None and row.refs == 1
    assert [loc.url for loc in world.repo.delete(images[1])] == [shared_url]
    assert world.row() is None
    assert shared_url in world.repo.referenced_urls()  # recorded until its data is gone (or for `glimpse scrub`)
    world.repo.data_removed(images[1], shared_url)
    assert shared_url not in world.repo.referenced_urls()


def test_without_deduplication_nothing_is_shared_and_old_data_counts_as_unshared(world: World) -> None:
    first, second = world.image(), world.image()
    url1, _ = world.publish(first, shared=False)
    url2, redundant = world.publish(second, shared=False)
    assert url1 != url2 and redundant == [] and world.row() is None
    assert [loc.url for loc in world.repo.delete(first)] == [url1]
    # Deduplication turned on later: the new image becomes the data's first holder, the old one stays its own.
    third = world.image()
    url3, _ = world.publish(third)
    assert url3 == f"file:///data/{third}"
    assert [loc.url for loc in world.repo.delete(second)] == [url2]


def test_removing_one_store_copy_keeps_shared_data(world: World) -> None:
    first, second = world.image(), world.image()
    url, _ = world.publish(first)
    world.publish(second)
    other = Location(url=f"file:///other/{first}", metadata={"store": "s2"})
    assert world.repo.add_location(first, other, size=len(world.data), checksum="c", shared=True) == other.url
    assert world.repo.remove_location(first, url) is False  # second still uses it
    with pytest.raises(Conflict):
        world.repo.remove_location(first, other.url)  # its last copy now
    row = world.row()
    assert row is not None and row.refs == 1


def test_copy_to_a_store_holding_a_twin_records_the_twin(world: World) -> None:
    first, second = world.image(), world.image()
    world.publish(first)
    world.publish(second)
    copy1 = Location(url=f"file:///other/{first}", metadata={"store": "s2"})
    copy2 = Location(url=f"file:///other/{second}.attempt", metadata={"store": "s2"})
    assert world.repo.add_location(first, copy1, size=len(world.data), checksum="c", shared=True) == copy1.url
    assert world.repo.add_location(second, copy2, size=len(world.data), checksum="c", shared=True) == copy1.url
    assert world.repo.remove_location(first, copy1.url) is False
    assert world.repo.remove_location(second, copy1.url) is True  # the last reference in s2


def test_an_upload_pin_keeps_the_data_and_becomes_the_location(world: World) -> None:
    first = world.image(owner="p1")
    url, _ = world.publish(first)
    second = world.image(owner="p1")
    claim = world.repo.begin_upload(second, None, "node", None)
    assert world.shared.pin(second, claim, world.key(), "p1") == url
    assert world.repo.delete(first) == []  # the pin holds the data while the upload runs
    recorded, redundant = world.publish(second, claim=claim, url=url)
    assert recorded == url and redundant == []
    row = world.row()
    assert row is not None and row.refs == 1
    with world.sessions() as s:
        assert s.scalar(select(func.count()).select_from(SharedDataPinRow).where(
            SharedDataPinRow.image_id == second)) == 0  # fmt: skip


def test_a_pin_is_only_given_for_data_the_project_sees(world: World) -> None:
    private = world.image(owner="p1", visibility="private")
    world.publish(private)
    other = world.image(owner="p2")
    claim = world.repo.begin_upload(other, None, "node", None)
    assert world.shared.pin(other, claim, world.key(), "p2") is None  # only p1's: p2 must write its data
    row = world.row()
    assert row is not None and row.refs == 1
    public = world.image(owner="p3", visibility="public")
    world.publish(public)
    assert world.shared.pin(other, claim, world.key(), "p2") is not None


def test_a_released_pin_of_the_last_reference_hands_the_data_back(world: World) -> None:
    first = world.image()
    url, _ = world.publish(first)
    second = world.image()
    claim = world.repo.begin_upload(second, None, "node", None)
    assert world.shared.pin(second, claim, world.key(), "p1") == url
    assert world.repo.delete(first) == []
    assert world.shared.unpin(second, "another upload's claim") == []
    assert [loc.url for loc in world.shared.unpin(second, claim)] == [url]
    assert world.row() is None


def test_pins_of_dead_uploads_are_found_and_released(world: World) -> None:
    first = world.image()
    world.publish(first)
    second = world.image()
    claim = world.repo.begin_upload(second, None, "node", None)
    world.shared.pin(second, claim, world.key(), "p1")
    assert second not in world.shared.stale_pins()  # its upload is alive
    world.repo.transition(second, "saving", "queued", upload_node=None, upload_claim=None)  # swept
    assert second in world.shared.stale_pins()
    assert world.shared.unpin(second) == []  # first still uses the data
    assert second not in world.shared.stale_pins()
    row = world.row()
    assert row is not None and row.refs == 1


def test_the_scrubber_removes_only_data_nobody_uses(world: World) -> None:
    first, second = world.image(), world.image()
    url, _ = world.publish(first)
    world.publish(second)
    queue = ScrubQueue(world.sessions)
    assert world.repo.delete(first, delayed=True) == []
    claim = queue.claim(first, "scrubber", timedelta(minutes=5))
    assert claim is not None
    assert queue.start_deleting(claim) == []  # second uses the data: only the reference goes
    assert queue.finish(claim) == "deleted"
    assert world.repo.delete(second, delayed=True) == []
    claim = queue.claim(second, "scrubber", timedelta(minutes=5))
    assert claim is not None
    assert [loc.url for _, loc in queue.start_deleting(claim)] == [url]


def _together(*steps: Callable[[], Any]) -> list[BaseException]:
    start = threading.Barrier(len(steps))
    errors: list[BaseException] = []

    def run(step: Callable[[], Any]) -> None:
        start.wait()
        try:
            step()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(step,)) for step in steps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_twins_published_at_once_share_one_copy(world: World) -> None:
    for _ in range(10):
        world.data = os.urandom(64)
        images = [world.image(owner=f"p{i}") for i in range(4)]
        claims = {i: world.repo.begin_upload(i, None, "node", None) for i in images}
        assert _together(*[lambda i=i, c=claims[i]: world.publish(i, claim=c) for i in images]) == []
        row = world.row()
        assert row is not None and row.refs == len(images)
        assert {world.repo.get(i).locations[0].url for i in images} == {row.url}


def test_a_delete_racing_a_publish_never_loses_nor_leaks_data(world: World) -> None:
    for _ in range(20):
        world.data = os.urandom(64)
        first = world.image()
        world.publish(first)
        second = world.image()
        claim = world.repo.begin_upload(second, None, "node", None)
        purged: list[str] = []

        def delete(first: str = first, purged: list[str] = purged) -> None:
            purged.extend(loc.url for loc in world.repo.delete(first))

        def publish(second: str = second, claim: str = claim, purged: list[str] = purged) -> None:
            _, redundant = world.publish(second, claim=claim)
            purged.extend(loc.url for loc in redundant)

        errors = _together(delete, publish)
        assert all(isinstance(e, Conflict) for e in errors), errors
        live = world.repo.get(second).locations[0].url
        assert live not in purged, "the data the image points at was handed back to be removed"
        row = world.row()
        assert row is not None and row.refs == 1 and row.url == live  # nothing leaked: one reference, one copy
        assert len(purged) == 1  # exactly one of the two copies goes
