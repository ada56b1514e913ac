"""glimpse.db.snapshots.ImageSnapshots on a real migrated SQLite file and a fresh PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from glimpse.db.migrate import upgrade
from glimpse.db.repositories import ImageRepository
from glimpse.db.session import make_engine, make_sessionmaker
from glimpse.db.snapshots import ImageSnapshots
from glimpse.domain.entities import Image, ImageSnapshot, Location, Member
from glimpse.errors import Conflict, NotFound
from tests.functional.databases import fresh_database

T0, T1 = datetime(2023, 5, 1, 8, 30, 15), datetime(2024, 2, 29, 23, 59, 59, 123456)


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'glimpse.db'}")
        upgrade(engine)
        yield make_sessionmaker(engine)
        engine.dispose()
        return
    with fresh_database("postgresql") as url:
        engine = make_engine(url)
        upgrade(engine)
        yield make_sessionmaker(engine)
        engine.dispose()


def _snapshot(image_id: str) -> ImageSnapshot:
    image = Image(
        id=image_id, owner="p1", name="debian", status="active", visibility="shared", protected=True,
        os_hidden=True, checksum="0" * 32, os_hash_algo="sha512", os_hash_value="f" * 128, size=10,
        virtual_size=20, container_format="bare", disk_format="raw", min_disk=2, min_ram=512,
        created_at=T0, updated_at=T1, tags=["a", "b"], properties={"os_distro": "debian", "k": "v"},
        locations=[Location("file:///glance/images/x", {"store": "file"}), Location("http://h/x", {})],
    )  # fmt: skip
    members = [Member(image_id, "p2", "accepted", T0, T1), Member(image_id, "p3", "pending", T0, T0)]
    return ImageSnapshot(image, members=members)


def _without_revision(snapshot: ImageSnapshot | None) -> ImageSnapshot:
    assert snapshot is not None
    return replace(snapshot, image=replace(snapshot.image, revision=0))


def test_write_then_read_gives_back_every_field(sessions: sessionmaker[Session]) -> None:
    snapshots = ImageSnapshots(sessions)
    image_id = str(uuid.uuid4())
    assert snapshots.read(image_id) is None
    wanted = _snapshot(image_id)
    snapshots.write(wanted)
    assert _without_revision(snapshots.read(image_id)) == wanted
    served = ImageRepository(sessions).get(image_id)
    assert (served.created_at, served.updated_at, served.status) == (T0, T1, "active")


def test_overwrite_replaces_children_and_bumps_the_revision(sessions: sessionmaker[Session]) -> None:
    snapshots, repo = ImageSnapshots(sessions), ImageRepository(sessions)
    image_id = str(uuid.uuid4())
    snapshots.write(_snapshot(image_id))
    read_before = repo.get(image_id)
    changed = _snapshot(image_id)
    changed.image.properties = {"os_distro": "ubuntu", "new": "1"}  # one changed, one gone, one new
    changed.image.tags = ["b", "c"]
    changed.image.locations = [Location("http://h/x", {}), Location("file:///glance/images/x", {"store": "file"})]
    changed.members = [Member(image_id, "p3", "rejected", T0, T1)]
    snapshots.write(changed)
    assert _without_revision(snapshots.read(image_id)) == changed
    # A user's save that read the image before the import lost the race: 409, not a silent overwrite.
    read_before.name = "stale"
    with pytest.raises(Conflict):
        repo.save(read_before)
    assert [m.member_id for m in repo.members(image_id)] == ["p3"]


def test_a_deleted_image_becomes_a_tombstone(sessions: sessionmaker[Session]) -> None:
    snapshots, repo = ImageSnapshots(sessions), ImageRepository(sessions)
    image_id = str(uuid.uuid4())
    snapshots.write(_snapshot(image_id))
    tomb = ImageSnapshot(replace(_snapshot(image_id).image, status="deleted", tags=[], properties={}, locations=[]),
                         deleted=True, deleted_at=T1)  # fmt: skip
    snapshots.write(tomb)
    stored = snapshots.read(image_id)
    assert stored is not None and stored.deleted and stored.deleted_at == T1
    assert stored.members == [] and stored.image.tags == [] and stored.image.locations == []
    with pytest.raises(NotFound):
        repo.get(image_id)
    with pytest.raises(Conflict):  # the id stays taken
        repo.add(Image(id=image_id, owner="p1"))
