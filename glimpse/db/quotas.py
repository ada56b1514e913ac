"""Per-project limits, usage and upload reservations, safe across many API processes.

Every check-then-act on one project's quota first takes that project's quota row (an UPDATE holds its
row lock until commit on PostgreSQL and MariaDB; on SQLite the write lock covers the database), so two
processes can never both pass a check that only one of them should.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    and_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glimpse.db.models import ImageRow, LocationRow, QuotaRow, ReservationRow, TaskRow, table_of, utcnow
from glimpse.db.session import SessionFactory, engine_of, rowcount
from glimpse.domain.entities import LIMIT_NAMES, ProjectLimits, ProjectUsage
from glimpse.errors import Gone

UPLOADING = ("saving", "uploading", "importing")


def lock_project(s: Session, project_id: str) -> None:
    """Take the project's quota row lock for the rest of the transaction, creating the row if needed."""
    bump = update(QuotaRow).where(QuotaRow.project_id == project_id).values(lock_counter=QuotaRow.lock_counter + 1)
    if rowcount(s.execute(bump)) == 1:
        return
    try:
        with s.begin_nested():
            s.add(QuotaRow(project_id=project_id, lock_counter=0, updated_at=utcnow()))
    except IntegrityError:
        pass  # another process created it meanwhile
    s.execute(bump)


def count_images(s: Session, project_id: str, statuses: tuple[str, ...] | None = None) -> int:
    query = select(func.count()).where(ImageRow.owner == project_id, ImageRow.deleted == false())
    if statuses is not None:
        query = query.where(ImageRow.status.in_(statuses))
    return int(s.scalar(query) or 0)


def stored_bytes(s: Session, project_id: str) -> int:
    """Bytes the project stores, each copy counted (as Glance counts each location), plus reservations.

    One statement, so one snapshot: an upload activating meanwhile (size set and reservation dropped in
    one commit) is seen either before or after, never half (neither counted)."""
    # A copy waiting for the scrubber still holds its bytes (Glance counts every location not deleted); an
    # image pending_delete is not counted at all (deleted is set), as Glance leaves it out, unless it is in the
    # recycle bin: binned data counts until it is gone.
    copies = (
        select(func.count())
        .where(LocationRow.image_id == ImageRow.id, LocationRow.status != "deleted")
        .scalar_subquery()
    )
    stored = (
        select(func.coalesce(func.sum(ImageRow.size * case((copies > 1, copies), else_=1)), 0))
        .where(ImageRow.owner == project_id, ImageRow.deleted == false())
        .scalar_subquery()
    )
    reserved = (
        select(func.coalesce(func.sum(ReservationRow.bytes), 0))
        .where(ReservationRow.project_id == project_id)
        .scalar_subquery()
    )
    return int(s.scalar(select(stored + binned_bytes(project_id) + reserved)) or 0)


def in_bin() -> ColumnElement[bool]:
    """Images in the recycle bin now: deleted, their data kept, their bin time not over."""
    return and_(ImageRow.deleted == true(), ImageRow.status == "pending_delete", ImageRow.bin_expires_at > utcnow())


def count_binned(s: Session, project_id: str) -> int:
    return int(s.scalar(select(func.count()).where(ImageRow.owner == project_id, in_bin())) or 0)


def binned_bytes(project_id: str) -> ScalarSelect[Any]:
    """The bytes the project's images in the recycle bin still hold: each copy until the scrubber removed it
    (an image whose bin time ended counts until its data is really gone)."""
    copies = (
        select(func.count())
        .where(LocationRow.image_id == ImageRow.id, LocationRow.status != "deleted")
        .scalar_subquery()
    )
    return (
        select(func.coalesce(func.sum(func.coalesce(ImageRow.size, 0) * copies), 0))
        .where(ImageRow.owner == project_id, ImageRow.deleted == true(), ImageRow.bin_expires_at.is_not(None))
        .scalar_subquery()
    )


def staged_bytes(s: Session, project_id: str) -> int:
    """Bytes held by staged data (images uploading to, or waiting in, the staging area)."""
    staged = s.scalar(
        select(func.coalesce(func.sum(ReservationRow.bytes), 0))
        .join(ImageRow, ImageRow.id == ReservationRow.image_id)
        .where(ReservationRow.project_id == project_id, ImageRow.status.in_(("uploading", "importing")))
    )
    return int(staged or 0)


_QUOTAS = table_of(QuotaRow)
_LIMITS_OF = select(*(_QUOTAS.c[n] for n in LIMIT_NAMES)).where(_QUOTAS.c.project_id == bindparam("project_id"))


class QuotaRepository:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._engine = engine_of(sessions)

    def limits(self, project_id: str) -> ProjectLimits:
        """One Core read on a connection (every create asks): no Session, no place in the writers' queue."""
        with self._engine.connect() as conn:
            row = conn.execute(_LIMITS_OF, {"project_id": project_id}).first()
        return ProjectLimits(**row._asdict()) if row else ProjectLimits()

    def all_limits(self) -> dict[str, ProjectLimits]:
        with self._sessions.begin() as s:
            rows = s.scalars(select(QuotaRow).order_by(QuotaRow.project_id))
            found = {r.project_id: ProjectLimits(**{n: getattr(r, n) for n in LIMIT_NAMES}) for r in rows}
        return {p: lim for p, lim in found.items() if lim != ProjectLimits()}

    def set_limits(self, project_id: str, limits: ProjectLimits) -> None:
        with self._sessions.begin() as s:
            lock_project(s, project_id)
            s.execute(
                update(QuotaRow).where(QuotaRow.project_id == project_id).values(**asdict(limits), updated_at=utcnow())
            )

    def usage(self, project_id: str) -> ProjectUsage:
        with self._sessions.begin() as s:
            return ProjectUsage(
                image_count_total=count_images(s, project_id),
                image_size_total=stored_bytes(s, project_id),
                image_stage_total=staged_bytes(s, project_id),
                image_count_uploading=count_images(s, project_id, UPLOADING),
                image_count_binned=int(
                    s.scalar(select(func.count()).where(ImageRow.owner == project_id, in_bin())) or 0
                ),
                image_size_binned=int(s.scalar(select(binned_bytes(project_id))) or 0),
            )

    def reserve(
        self, image_id: str, project_id: str, want: int, limit: int | None, stage_limit: int | None = None
    ) -> int:
        """Reserve up to `want` more bytes for the upload of image_id, within the project's byte limit and,
        for staged data, its staging limit; returns how many were granted."""
        with self._sessions.begin() as s:
            lock_project(s, project_id)
            _check_alive(s, image_id)
            granted = want
            if limit is not None:
                granted = min(granted, limit - stored_bytes(s, project_id))
            if stage_limit is not None:
                granted = min(granted, stage_limit - staged_bytes(s, project_id))
            granted = max(0, granted)
            if granted:
                held = s.get(ReservationRow, image_id)
                if held is None:
                    s.add(ReservationRow(image_id=image_id, project_id=project_id, bytes=granted, created_at=utcnow()))
                else:
                    held.bytes += granted
            return granted

    def reserve_up_to(
        self, image_id: str, project_id: str, total: int, limit: int | None, stage_limit: int | None = None
    ) -> bool:
        """Make the image's reservation at least `total` bytes, within the limits; False when it cannot.

        Unlike reserve, calling it again with the same total reserves nothing more: a worker that takes
        an import over does not count the bytes of the attempt it replaces a second time."""
        with self._sessions.begin() as s:
            lock_project(s, project_id)
            _check_alive(s, image_id)
            held = s.get(ReservationRow, image_id)
            want = total - (held.bytes if held else 0)
            if want <= 0:
                return True
            if limit is not None and want > limit - stored_bytes(s, project_id):
                return False
            if stage_limit is not None and want > stage_limit - staged_bytes(s, project_id):
                return False
            if held is None:
                s.add(ReservationRow(image_id=image_id, project_id=project_id, bytes=want, created_at=utcnow()))
            else:
                held.bytes += want
            return True

    def sweep(self) -> int:
        """Drop reservations with no live upload or import behind them (image gone, or neither uploading,
        staged, importing, nor being copied by a pending or running task); returns how many went."""
        live_image = exists().where(
            ImageRow.id == ReservationRow.image_id, ImageRow.deleted == false(), ImageRow.status.in_(UPLOADING)
        )
        live_task = exists().where(
            TaskRow.image_id == ReservationRow.image_id, TaskRow.status.in_(("pending", "processing"))
        )
        with self._sessions.begin() as s:
            result = s.execute(delete(ReservationRow).where(~live_image, ~live_task))
            return rowcount(result)

    def headroom(self, image_id: str, project_id: str, limit: int) -> int:
        """What the image's reservation could grow to within `limit` (its own reservation included)."""
        with self._sessions.begin() as s:
            held = s.get(ReservationRow, image_id)
            return max(0, limit - stored_bytes(s, project_id) + (held.bytes if held else 0))

    def release(self, image_id: str) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(ReservationRow).where(ReservationRow.image_id == image_id))


def _check_alive(s: Session, image_id: str) -> None:
    """A deleted image reserves nothing: its upload or import must stop (and remove its data)."""
    alive = s.scalar(select(ImageRow.id).where(ImageRow.id == image_id, ImageRow.deleted == false()))
    if alive is None:
        raise Gone(f"Image {image_id} was deleted: its data is not kept.")
