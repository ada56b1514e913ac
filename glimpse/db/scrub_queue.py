"""ScrubQueue: the data delayed delete keeps, claimed by one scrubber at a time, and restore.

An image with data waiting (status pending_delete, a live image whose copy in one store was deleted, or a
deleted image whose data its deletion could not remove) is claimed through its own row: the claim token, the
scrubber's name and a heartbeat go in the columns an upload uses (an image waiting for the scrubber has no
upload). Another scrubber takes the image over only once that heartbeat is older than `stale_after`, and every
write of a scrubber checks its token in the same transaction, locking the image row; `restore` takes the same
row lock, so the two never interleave.

Before removing any data a scrubber marks the copies `deleting` (under its claim): from then on they
count as gone, and an image with such a copy can no longer be restored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, or_, select, true, union, update
from sqlalchemy.orm import Session

from glimpse.db.models import (
    NEXT_REVISION,
    WAITING,
    ImageRow,
    LocationRow,
    MemberRow,
    PropertyRow,
    TagRow,
    table_of,
    utcnow,
)
from glimpse.db.quotas import count_images, lock_project
from glimpse.db.session import SessionFactory, rowcount
from glimpse.db.shared_data import unlink
from glimpse.domain.entities import Location, ScrubClaim
from glimpse.errors import ClaimLost, Conflict, NotFound, TooLarge

WITH_DATA = ("active", "deactivated")


# The bin time a purge leaves: before any clock's now, so the image is out of the bin on every node at once.
PURGED = datetime(1970, 1, 1)


def restored_status(former: str | None) -> str:
    """What a restore brings back: the status an image had, with its data; an upload or import the delete
    interrupted (its data was never published) starts again from queued. Unknown (delayed delete): active."""
    if former is None:
        return "active"
    return former if former in WITH_DATA else "queued"


def _waiting_copy() -> ColumnElement[bool]:
    return exists().where(LocationRow.image_id == ImageRow.id, LocationRow.status.in_(WAITING))


class ScrubQueue:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def due(self, older_than: timedelta, limit: int = 1000) -> list[str]:
        """Ids of the images to scrub: deleted (pending_delete) longer than `older_than` ago, or with a copy
        waiting that has no scrub_time (a store's copy deleted under delayed_delete; data a deletion left)."""
        # Two searches, each on its own index (ix_images_status; ix_image_locations_status_image_id for the few
        # waiting copies), rather than one OR that makes the database read every image.
        now = utcnow()
        # A binned image waits for its own expiry time instead of scrub_time.
        pending = select(ImageRow.id, ImageRow.deleted_at).where(
            ImageRow.status == "pending_delete",
            or_(
                and_(ImageRow.bin_expires_at.is_(None), ImageRow.deleted_at <= now - older_than),
                ImageRow.bin_expires_at <= now,
            ),
        )
        # Copies waiting without a scrub_time: a store's copy deleted under delayed_delete (a live image), and the
        # data a deletion could not remove (a deleted image, its copies left `deleting`).
        waiting = select(LocationRow.image_id).where(LocationRow.status.in_(WAITING))
        left = select(ImageRow.id, ImageRow.deleted_at).where(
            ImageRow.status != "pending_delete", ImageRow.id.in_(waiting)
        )
        both = union(pending, left).subquery()
        with self._sessions.begin() as s:
            query = select(both.c.id).order_by(both.c.deleted_at, both.c.id).limit(limit)
            return list(s.scalars(query))

    def leftovers(self, older_than: timedelta, limit: int = 1000) -> list[str]:
        """Ids of the images (deleted or live, never pending_delete: delayed delete is the scrubber's alone) with a
        copy a deletion could not remove, left `deleting` since longer than `older_than` ago (the deleting request,
        or a scrubber, is done with it by then)."""
        deleting = select(LocationRow.image_id).where(LocationRow.status == "deleting")
        with self._sessions.begin() as s:
            query = (
                select(ImageRow.id)
                .where(
                    ImageRow.status != "pending_delete",
                    ImageRow.id.in_(deleting),
                    ImageRow.updated_at <= utcnow() - older_than,
                )
                .order_by(ImageRow.updated_at, ImageRow.id)
                .limit(limit)
            )
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
                    or_(ImageRow.status == "pending_delete", _waiting_copy()),
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
                values.update(status="deleted", updated_at=utcnow(), revision=NEXT_REVISION)
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

    def restore(
        self,
        image_id: str,
        stale_after: timedelta,
        check: Callable[[list[Location]], None],
        *,
        from_bin: bool = False,
        max_images: int | None = None,
    ) -> str:
        """pending_delete -> the status it had (active when unknown), with everything it had, as
        `glance-scrubber --restore` does; Conflict with the reason when it cannot be (not pending_delete, a
        scrubber at work, data already gone). from_bin: only an image in the recycle bin now (NotFound
        otherwise). max_images: its owner must have room for one more image (TooLarge otherwise).
        check: called with the copies to bring back, under the lock; it raises when one is unusable."""
        with self._sessions.begin() as s:
            row = s.get(ImageRow, image_id, with_for_update=True)  # the row lock every scrubber write takes
            now = utcnow()  # read under the lock: a purge that held it first is seen as over
            if row is None:
                raise NotFound(f"No image found with ID {image_id}")
            in_bin = row.status == "pending_delete" and row.bin_expires_at is not None and row.bin_expires_at > now
            if from_bin and not in_bin:
                raise NotFound(f"Image {image_id} is not in the recycle bin.")
            if row.status != "pending_delete":
                raise Conflict(
                    f"Cannot restore image {image_id} from {row.status} to active (wanted from_state=pending_delete)."
                )
            if row.upload_claim is not None and row.upload_heartbeat_at is not None:
                if row.upload_heartbeat_at >= now - stale_after:
                    raise Conflict(
                        f"Cannot restore image {image_id}: scrubber {row.upload_node} is deleting its data now."
                    )
            target = restored_status(row.status_before_delete)
            copies = s.execute(
                select(LocationRow.status, LocationRow.url, LocationRow.meta)
                .where(LocationRow.image_id == image_id, LocationRow.status != "active")
                .with_for_update()
            ).all()
            statuses = [c[0] for c in copies]
            if target in WITH_DATA:
                if any(status in ("deleting", "deleted") for status in statuses):
                    raise Conflict(
                        f"Cannot restore image {image_id}: a scrubber has already removed (some of) its data."
                    )
                if "pending_delete" not in statuses:
                    raise Conflict(f"Cannot restore image {image_id}: it has no data to restore.")
            if max_images is not None and row.owner is not None:
                lock_project(s, row.owner)
                if count_images(s, row.owner) >= max_images:
                    raise TooLarge(
                        f"Cannot restore image {image_id}: project {row.owner} has reached its limit of "
                        f"{max_images} images. Delete another image or ask for a higher limit first."
                    )
            check([Location(url=c[1], metadata=json.loads(c[2])) for c in copies if c[0] == "pending_delete"])
            s.execute(
                update(LocationRow)
                .where(LocationRow.image_id == image_id, LocationRow.status == "pending_delete")
                .values(status="active")
                .execution_options(synchronize_session=False)
            )
            row.status = target
            row.deleted = False
            row.deleted_at = None
            row.bin_expires_at = None
            row.status_before_delete = None
            row.updated_at = now
            row.revision += 1
            row.upload_claim = row.upload_node = None
            row.upload_heartbeat_at = None
            return target

    def expire(self, image_id: str) -> None:
        """The binned image leaves the bin now, for good: its data is due for the scrubber. NotFound when it is
        not in the bin (restored, purged or expired meanwhile): the same row lock as restore decides a race."""
        now = utcnow()
        with self._sessions.begin() as s:
            result = s.execute(
                update(ImageRow)
                .where(
                    ImageRow.id == image_id,
                    ImageRow.deleted == true(),
                    ImageRow.status == "pending_delete",
                    ImageRow.bin_expires_at > now,
                )
                # Not this node's now: a restore that read its clock before waiting on the row lock, or runs on
                # a node whose clock lags, must still find it out of the bin.
                .values(bin_expires_at=PURGED, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if rowcount(result) != 1:
                raise NotFound(f"Image {image_id} is not in the recycle bin.")


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
