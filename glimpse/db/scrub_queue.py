"""ScrubQueue: the data delayed delete keeps, claimed by one scrubber at a time, and restore.

An image with data waiting (status pending_delete, or a live image whose copy in one store was deleted)
is claimed through its own row: the claim token, the scrubber's name and a heartbeat go in the columns an
upload uses (an image waiting for the scrubber has no upload). Another scrubber takes the image over only
once that heartbeat is older than `stale_after`, and every write of a scrubber checks its token in the
same transaction, locking the image row; `restore` takes the same row lock, so the two never interleave.

Before removing any data a scrubber marks the copies `deleting` (under its claim): from then on they
count as gone, and an image with such a copy can no longer be restored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import ColumnElement, exists, false, or_, select, union, update
from sqlalchemy.orm import Session

from glimpse.db.models import ImageRow, LocationRow, MemberRow, PropertyRow, TagRow, table_of, utcnow
from glimpse.db.session import SessionFactory, rowcount
from glimpse.db.shared_data import unlink
from glimpse.domain.entities import Location, ScrubClaim
from glimpse.errors import ClaimLost, Conflict, NotFound

WAITING = ("pending_delete", "deleting")


def _waiting_copy() -> ColumnElement[bool]:
    return exists().where(LocationRow.image_id == ImageRow.id, LocationRow.status.in_(WAITING))


class ScrubQueue:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def due(self, older_than: timedelta, limit: int = 1000) -> list[str]:
        """Ids of the images to scrub: deleted (pending_delete) longer than `older_than` ago, or live with a
        copy waiting (a store's copy deleted under delayed_delete: no scrub_time for those)."""
        # Two searches, each on its own index (ix_images_status; ix_image_locations_status_image_id for the few
        # waiting copies), rather than one OR that makes the database read every image.
        pending = select(ImageRow.id, ImageRow.deleted_at).where(
            ImageRow.status == "pending_delete", ImageRow.deleted_at <= utcnow() - older_than
        )
        waiting = select(LocationRow.image_id).where(LocationRow.status.in_(WAITING))
        live = select(ImageRow.id, ImageRow.deleted_at).where(ImageRow.deleted == false(), ImageRow.id.in_(waiting))
        both = union(pending, live).subquery()
        with self._sessions.begin() as s:
            query = select(both.c.id).order_by(both.c.deleted_at, both.c.id).limit(limit)
            return list(s.scalars(query))

    def claim(self, image_id: str, node: str, stale_after: timedelta) -> ScrubClaim | None:
        """Take the image for this scrubber, unless another holds it with a fresh heartbeat."""
        now = utcnow()
        token = str(uuid.uuid4())
        with self._sessions.begin() as s:
            result = s.execute(
                update(ImageRow)
                .where(
                    ImageRow.id == image_id,
                    or_(ImageRow.status == "pending_delete", (ImageRow.deleted == false()) & _waiting_copy()),
                    or_(ImageRow.upload_claim.is_(None), ImageRow.upload_heartbeat_at < now - stale_after),
                )
                .values(upload_claim=token, upload_node=node, upload_heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )
            if rowcount(result) != 1:
                return None
        return ScrubClaim(image_id, token)

    def beat(self, claim: ScrubClaim) -> bool:
        with self._sessions.begin() as s:
            try:
                _hold(s, claim)
            except ClaimLost:
                return False
            return True

    def start_deleting(self, claim: ScrubClaim) -> list[tuple[int, Location]]:
        """Under the claim: the waiting copies become `deleting` (no longer restorable); returns every
        copy being deleted, those a scrubber killed half-way left included."""
        with self._sessions.begin() as s:
            image = _hold(s, claim)
            waiting = s.execute(
                select(LocationRow.id, LocationRow.url).where(
                    LocationRow.image_id == claim.image_id, LocationRow.status == "pending_delete"
                )
            ).all()
            for location_id, url in waiting:
                if not unlink(s, url):  # shared data another image still uses: only this reference goes
                    _forget(s, location_id, image.deleted)
            s.execute(
                update(LocationRow)
                .where(LocationRow.image_id == claim.image_id, LocationRow.status == "pending_delete")
                .values(status="deleting")
                .execution_options(synchronize_session=False)
            )
            rows = s.execute(
                select(LocationRow.id, LocationRow.url, LocationRow.meta)
                .where(LocationRow.image_id == claim.image_id, LocationRow.status == "deleting")
                .order_by(LocationRow.id)
            ).all()
            return [(r[0], Location(url=r[1], metadata=json.loads(r[2]))) for r in rows]

    def copy_deleted(self, claim: ScrubClaim, location_id: int) -> None:
        """Under the claim: that copy's data is gone. A deleted image keeps the row (status deleted) until
        `glimpse db purge`; a live image forgets it."""
        with self._sessions.begin() as s:
            image = _hold(s, claim)
            _forget(s, location_id, image.deleted)

    def finish(self, claim: ScrubClaim) -> str | None:
        """Under the claim: a pending_delete image with nothing left becomes deleted (its properties, tags
        and members go, as a deletion without delay removes them); the claim is released either way.
        Returns the image's new status when it changed."""
        with self._sessions.begin() as s:
            image = _hold(s, claim)
            left = s.scalar(
                select(LocationRow.id).where(LocationRow.image_id == claim.image_id, LocationRow.status.in_(WAITING))
            )
            values: dict[str, object] = {"upload_claim": None, "upload_node": None, "upload_heartbeat_at": None}
            done = image.status == "pending_delete" and left is None
            if done:
                values.update(status="deleted", updated_at=utcnow(), revision=ImageRow.revision + 1)
                for table in (table_of(PropertyRow), table_of(TagRow), table_of(MemberRow)):
                    s.execute(table.delete().where(table.c.image_id == claim.image_id))
            s.execute(
                update(ImageRow)
                .where(ImageRow.id == claim.image_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return "deleted" if done else None

    def release(self, claim: ScrubClaim) -> None:
        """Give the image back (a store failed): the next run tries again at once."""
        with self._sessions.begin() as s:
            s.execute(
                update(ImageRow)
                .where(ImageRow.id == claim.image_id, ImageRow.upload_claim == claim.token)
                .values(upload_claim=None, upload_node=None, upload_heartbeat_at=None)
                .execution_options(synchronize_session=False)
            )

    def restore(self, image_id: str, stale_after: timedelta, check: Callable[[list[Location]], None]) -> None:
        """pending_delete -> active with everything it had, as `glance-scrubber --restore` does; Conflict
        with the reason when it cannot be (not pending_delete, a scrubber at work, data already gone).
        check: called with the copies to bring back, under the lock; it raises when one is unusable."""
        now = utcnow()
        with self._sessions.begin() as s:
            row = s.get(ImageRow, image_id, with_for_update=True)  # the row lock every scrubber write takes
            if row is None:
                raise NotFound(f"No image found with ID {image_id}")
            if row.status != "pending_delete":
                raise Conflict(
                    f"Cannot restore image {image_id} from {row.status} to active (wanted from_state=pending_delete)."
                )
            if row.upload_claim is not None and row.upload_heartbeat_at is not None:
                if row.upload_heartbeat_at >= now - stale_after:
                    raise Conflict(
                        f"Cannot restore image {image_id}: scrubber {row.upload_node} is deleting its data now."
                    )
            copies = s.execute(
                select(LocationRow.status, LocationRow.url, LocationRow.meta)
                .where(LocationRow.image_id == image_id, LocationRow.status != "active")
                .with_for_update()
            ).all()
            statuses = [c[0] for c in copies]
            if any(status in ("deleting", "deleted") for status in statuses):
                raise Conflict(f"Cannot restore image {image_id}: a scrubber has already removed (some of) its data.")
            if "pending_delete" not in statuses:
                raise Conflict(f"Cannot restore image {image_id}: it has no data to restore.")
            check([Location(url=c[1], metadata=json.loads(c[2])) for c in copies if c[0] == "pending_delete"])
            s.execute(
                update(LocationRow)
                .where(LocationRow.image_id == image_id, LocationRow.status == "pending_delete")
                .values(status="active")
                .execution_options(synchronize_session=False)
            )
            row.status = "active"
            row.deleted = False
            row.deleted_at = None
            row.updated_at = now
            row.revision += 1
            row.upload_claim = row.upload_node = None
            row.upload_heartbeat_at = None


def _hold(s: Session, claim: ScrubClaim) -> ImageRow:
    """In the caller's transaction: check the claim and lock the image row until commit."""
    result = s.execute(
        update(ImageRow)
        .where(ImageRow.id == claim.image_id, ImageRow.upload_claim == claim.token)
        .values(upload_heartbeat_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise ClaimLost(f"The scrub of image {claim.image_id} was taken over by another scrubber.")
    row = s.get(ImageRow, claim.image_id)
    assert row is not None
    return row


def _forget(s: Session, location_id: int, image_deleted: bool) -> None:
    """A copy whose data is gone (or stays only for other images): a deleted image keeps the row, marked deleted,
    until `glimpse db purge`; a live image forgets it."""
    if image_deleted:
        s.execute(
            update(LocationRow)
            .where(LocationRow.id == location_id)
            .values(status="deleted")
            .execution_options(synchronize_session=False)
        )
    else:
        s.execute(table_of(LocationRow).delete().where(LocationRow.id == location_id))
