"""The audit log and the retention lease over a real, migrated SQLite database: an entry commits with its change
or not at all, a lost lease stops a deletion in its own transaction, references are found."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select, update

from glimpse.db.audit import AuditRecords, Leases
from glimpse.db.audit_models import AuditRow, LeaseRow
from glimpse.db.models import ImageRow, MemberRow, utcnow
from glimpse.db.repositories import ImageRepository
from glimpse.db.retention import RetentionRecords
from glimpse.db.session import SessionFactory, make_sessionmaker
from glimpse.domain.audit_entries import AuditEntry, AuditQuery, RetentionPolicy, fenced, recording
from glimpse.domain.entities import Image
from glimpse.errors import ClaimLost, Conflict

REFS = ("base_image_ref", "replacement_image")


@pytest.fixture
def sessions(engine: Engine) -> SessionFactory:
    return make_sessionmaker(engine)


def note(action: str, target: str = "t") -> AuditEntry:
    return AuditEntry(action=action, target_type="image", target_id=target, user_id="alice", project_id="p")


def rows(sessions: SessionFactory) -> list[AuditRow]:
    with sessions.begin() as s:
        return list(s.scalars(select(AuditRow).order_by(AuditRow.id)))


def add_image(repo: ImageRepository, **properties: str) -> Image:
    return repo.add(Image(id=str(uuid.uuid4()), owner="p", status="active", properties=dict(properties)))


def test_an_entry_commits_with_its_change_once(sessions: SessionFactory) -> None:
    repo = ImageRepository(sessions)
    with recording(note("image.create")):
        image = repo.add(Image(id=str(uuid.uuid4()), owner="p"))
        repo.get(image.id)  # a read after it takes nothing
        image.name = "again"
        repo.save(image)  # a second write in the same scope has no entry of its own
    found = rows(sessions)
    assert [r.action for r in found] == ["image.create"]
    assert (found[0].user_id, found[0].project_id, json.loads(found[0].roles)) == ("alice", "p", [])


def test_a_read_does_not_take_the_entry_of_the_write_after_it(sessions: SessionFactory) -> None:
    repo = ImageRepository(sessions)
    image = repo.add(Image(id=str(uuid.uuid4()), owner="p"))
    with recording(note("image.update", image.id)):
        current = repo.get(image.id)
        current.name = "b"
        repo.save(current)
    assert [r.action for r in rows(sessions)] == ["image.update"]


def test_a_failed_change_leaves_no_entry(sessions: SessionFactory) -> None:
    repo = ImageRepository(sessions)
    image = repo.add(Image(id=str(uuid.uuid4()), owner="p"))
    repo.save(image)  # the revision moves on: the stale copy below loses
    with recording(note("image.update", image.id)), pytest.raises(Conflict):
        repo.save(image)
    assert rows(sessions) == []


def test_a_change_whose_entry_cannot_be_written_does_not_happen(sessions: SessionFactory, engine: Engine) -> None:
    repo = ImageRepository(sessions)
    image = repo.add(Image(id=str(uuid.uuid4()), owner="p", name="before"))
    too_long = AuditEntry(action="a" * 65, target_type="image", target_id=image.id)
    with engine.begin() as conn:  # SQLite ignores VARCHAR lengths: a trigger stands for a database refusing the row
        conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON audit_log WHEN length(NEW.action) > 64 "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    image.name = "after"
    with recording(too_long), pytest.raises(Exception, match="refused"):
        repo.save(image)
    assert repo.get(image.id).name == "before"


def test_a_lost_lease_stops_the_deletion_in_its_own_transaction(sessions: SessionFactory) -> None:
    repo, leases = ImageRepository(sessions), Leases(sessions)
    image = add_image(repo)
    first = leases.acquire("retention", "node-a", 60)
    assert first is not None and first.generation == 1
    assert leases.acquire("retention", "node-b", 60) is None  # held
    with sessions.begin() as s:  # node-a stalls past its lease
        s.execute(update(LeaseRow).values(expires_at=utcnow() - timedelta(seconds=1)))
    second = leases.acquire("retention", "node-b", 60)
    assert second is not None and second.generation == 2
    with fenced(first), recording(note("image.delete", image.id)), pytest.raises(ClaimLost):
        repo.delete(image.id)
    assert repo.get(image.id).status == "active"
    assert not leases.renew(first, 60)
    leases.release(first)  # not its own any more: changes nothing
    assert leases.acquire("retention", "node-c", 60) is None
    with fenced(second), recording(note("image.delete", image.id)):
        repo.delete(image.id)
    assert [r.action for r in rows(sessions)] == ["image.delete"]
    leases.release(second)
    assert leases.acquire("retention", "node-c", 60) is not None  # released: the next node may take it at once


def test_the_log_lists_filters_pages_and_purges(sessions: SessionFactory) -> None:
    log = AuditRecords(sessions)
    for i in range(5):
        log.append(note(f"a{i % 2}", target=f"t{i}"))
    page = log.list(AuditQuery(limit=2))
    assert [e.target_id for e in page] == ["t4", "t3"]
    assert [e.target_id for e in log.list(AuditQuery(limit=2, marker=page[-1].id))] == ["t2", "t1"]
    assert [e.target_id for e in log.list(AuditQuery(action="a1", newest_first=False))] == ["t1", "t3"]
    assert log.list(AuditQuery(project_id="nobody")) == []
    with sessions.begin() as s:
        s.execute(update(AuditRow).where(AuditRow.target_id.in_(("t0", "t1"))).values(
            created_at=utcnow() - timedelta(days=40)
        ))  # fmt: skip
    assert log.purge(30) == 2
    with sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(AuditRow)) == 3


def test_candidates_and_what_refers_to_them(sessions: SessionFactory) -> None:
    repo, records = ImageRepository(sessions), RetentionRecords(sessions)
    base = add_image(repo, os_family="ubuntu")
    shared = add_image(repo, os_family="ubuntu")
    lonely = add_image(repo, os_family="ubuntu")
    self_ref = add_image(repo, os_family="ubuntu")
    other_family = add_image(repo, os_family="debian")
    child = add_image(repo, base_image_ref=base.id)
    add_image(repo, replacement_image=self_ref.id)  # its successor...
    gone = add_image(repo, replacement_image=lonely.id)  # ...and a deleted image refers to nothing
    repo.delete(gone.id)
    with sessions.begin() as s:
        s.add(MemberRow(image_id=shared.id, member="q", status="accepted", created_at=utcnow(), updated_at=utcnow()))
        s.add(MemberRow(image_id=lonely.id, member="r", status="pending", created_at=utcnow(), updated_at=utcnow()))
        s.execute(update(ImageRow).where(ImageRow.id == self_ref.id).values(status="deactivated"))
    found = {c.id: c for c in records.candidates(RetentionPolicy("x", None, "ubuntu", 1, None), REFS)}
    assert set(found) == {base.id, shared.id, lonely.id, self_ref.id}
    assert found[base.id].referenced_by == (f"base_image_ref of image {child.id}",)
    assert found[shared.id].referenced_by == ("accepted by member q",)
    assert found[lonely.id].referenced_by == ()
    assert len(found[self_ref.id].referenced_by) == 1
    assert other_family.id not in found
    assert records.references(base.id, REFS) == [f"base_image_ref of image {child.id}"]
    in_project = records.candidates(RetentionPolicy("y", "p", None, 1, None), REFS)
    assert {c.id for c in in_project} >= {base.id, other_family.id, child.id}
