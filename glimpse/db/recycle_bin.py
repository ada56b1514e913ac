"""The recycle bin's records: binned images (deleted, pending_delete, bin_expires_at ahead) and per-project retention.

Restoring, expiring and scrubbing binned images is the scrub queue's work (db/scrub_queue.py): one row lock
decides every race between them.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.orm import Session, selectinload

from glimpse.db.models import ImageRow, RetentionRow, utcnow
from glimpse.db.quotas import in_bin
from glimpse.db.repositories import to_image
from glimpse.db.scrub_queue import restored_status
from glimpse.db.session import SessionFactory
from glimpse.domain.entities import BinnedImage
from glimpse.errors import BadRequest, NotFound

WHOLE_IMAGES = (selectinload(ImageRow.properties), selectinload(ImageRow.tags), selectinload(ImageRow.locations))


def _binned(row: ImageRow) -> BinnedImage:
    assert row.deleted_at is not None and row.bin_expires_at is not None
    image = to_image(row)
    return BinnedImage(image, row.deleted_at, row.bin_expires_at, restored_status(row.status_before_delete))


class RecycleBinRepository:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def retention(self, project_id: str) -> int | None:
        with self._sessions.begin() as s:
            row = s.get(RetentionRow, project_id)
            return None if row is None else row.retention_period

    def all_retention(self) -> dict[str, int]:
        with self._sessions.begin() as s:
            rows = s.scalars(select(RetentionRow).order_by(RetentionRow.project_id))
            return {r.project_id: r.retention_period for r in rows}

    def set_retention(self, project_id: str, seconds: int | None) -> None:
        with self._sessions.begin() as s:
            if seconds is None:
                s.execute(delete(RetentionRow).where(RetentionRow.project_id == project_id))
                return
            row = s.get(RetentionRow, project_id, with_for_update=True)
            if row is None:
                s.add(RetentionRow(project_id=project_id, retention_period=seconds, updated_at=utcnow()))
            else:
                row.retention_period, row.updated_at = seconds, utcnow()

    def binned(self, owner: str | None, limit: int, marker: str | None = None) -> list[BinnedImage]:
        with self._sessions.begin() as s:
            query = select(ImageRow).where(in_bin()).options(*WHOLE_IMAGES)  # one query per collection, not per image
            if owner is not None:
                query = query.where(ImageRow.owner == owner)
            if marker is not None:
                query = query.where(self._after(s, marker))
            query = query.order_by(ImageRow.deleted_at.desc(), ImageRow.id.desc()).limit(limit)
            return [_binned(row) for row in s.scalars(query)]

    @staticmethod
    def _after(s: Session, marker: str) -> ColumnElement[bool]:
        row = s.get(ImageRow, marker)
        if row is None or row.deleted_at is None or row.bin_expires_at is None:
            raise BadRequest(f"Image {marker} is not in the recycle bin.")
        return or_(
            ImageRow.deleted_at < row.deleted_at, and_(ImageRow.deleted_at == row.deleted_at, ImageRow.id < row.id)
        )

    def binned_image(self, image_id: str) -> BinnedImage:
        with self._sessions.begin() as s:
            row = s.scalar(select(ImageRow).where(ImageRow.id == image_id, in_bin()))
            if row is None:
                raise NotFound(f"Image {image_id} is not in the recycle bin.")
            return _binned(row)
