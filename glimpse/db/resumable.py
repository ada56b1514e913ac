"""tus uploads in progress (domain/ports.py:ResumableUploadRepository): each PATCH claims its upload with a
compare-and-swap on the offset it starts from, so two PATCHes racing on one upload never both write."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, false, or_, select, update

from glimpse.db.models import ImageRow, ResumableUploadRow, utcnow
from glimpse.db.session import SessionFactory, rowcount
from glimpse.domain.entities import ResumableUpload
from glimpse.errors import Conflict, NotFound


def _record(row: ResumableUploadRow) -> ResumableUpload:
    return ResumableUpload(
        id=row.id,
        image_id=row.image_id,
        owner=row.owner,
        kind=row.kind,
        length=row.length,
        offset=row.offset,
        store=row.store,
        handle=row.handle,
        image_claim=row.image_claim,
        expires_at=row.expires_at,
        metadata=json.loads(row.meta),
        parts=tuple(json.loads(row.parts)),
        repr_digest=row.repr_digest,
    )


class ResumableUploadRepository:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def add(self, upload: ResumableUpload) -> None:
        with self._sessions.begin() as s:
            s.add(
                ResumableUploadRow(
                    id=upload.id,
                    image_id=upload.image_id,
                    owner=upload.owner,
                    kind=upload.kind,
                    length=upload.length,
                    offset=upload.offset,
                    store=upload.store,
                    handle=upload.handle,
                    image_claim=upload.image_claim,
                    meta=json.dumps(upload.metadata),
                    parts=json.dumps(list(upload.parts)),
                    repr_digest=upload.repr_digest,
                    created_at=utcnow(),
                    expires_at=upload.expires_at,
                )
            )

    def get(self, upload_id: str) -> ResumableUpload:
        with self._sessions.begin() as s:
            row = s.get(ResumableUploadRow, upload_id)
            if row is None:
                raise NotFound(f"No upload found with ID {upload_id}")
            return _record(row)

    def of_image(self, image_id: str) -> list[ResumableUpload]:
        with self._sessions.begin() as s:
            rows = s.scalars(
                select(ResumableUploadRow)
                .where(ResumableUploadRow.image_id == image_id)
                .order_by(ResumableUploadRow.created_at)
            )
            return [_record(r) for r in rows]

    def claim(self, upload_id: str, offset: int, stale_after: timedelta) -> str:
        claim = str(uuid.uuid4())
        now = utcnow()
        with self._sessions.begin() as s:
            result = s.execute(
                update(ResumableUploadRow)
                .where(
                    ResumableUploadRow.id == upload_id,
                    ResumableUploadRow.offset == offset,
                    or_(ResumableUploadRow.patch_claim.is_(None), ResumableUploadRow.patch_beat_at < now - stale_after),
                )
                .values(patch_claim=claim, patch_beat_at=now)
            )
            if rowcount(result) != 1:
                raise Conflict(
                    f"Upload {upload_id} is not at offset {offset}, or another request is writing it: "
                    "ask its offset (HEAD) and resume from there."
                )
        return claim

    def beat(self, upload_id: str, claim: str) -> bool:
        with self._sessions.begin() as s:
            result = s.execute(
                update(ResumableUploadRow)
                .where(ResumableUploadRow.id == upload_id, ResumableUploadRow.patch_claim == claim)
                .values(patch_beat_at=utcnow())
            )
            return rowcount(result) == 1

    def advance(
        self, upload_id: str, claim: str, offset: int, new_offset: int, handle: str, expires_at: datetime, keep: bool
    ) -> None:
        with self._sessions.begin() as s:
            result = s.execute(
                update(ResumableUploadRow)
                .where(
                    ResumableUploadRow.id == upload_id,
                    ResumableUploadRow.patch_claim == claim,
                    ResumableUploadRow.offset == offset,
                )
                .values(
                    offset=new_offset,
                    handle=handle,
                    expires_at=expires_at,
                    patch_claim=claim if keep else None,
                    patch_beat_at=utcnow() if keep else None,
                )
            )
            if rowcount(result) != 1:
                raise Conflict(f"Upload {upload_id} was taken over or ended while this request wrote to it.")

    def release(self, upload_id: str, claim: str) -> None:
        with self._sessions.begin() as s:
            s.execute(
                update(ResumableUploadRow)
                .where(ResumableUploadRow.id == upload_id, ResumableUploadRow.patch_claim == claim)
                .values(patch_claim=None, patch_beat_at=None)
            )

    def remove(self, upload_ids: Sequence[str]) -> None:
        if not upload_ids:
            return
        with self._sessions.begin() as s:
            s.execute(delete(ResumableUploadRow).where(ResumableUploadRow.id.in_(list(upload_ids))))

    def finished(self, now: datetime, stale_after: timedelta) -> list[ResumableUpload]:
        waiting = select(ImageRow.id).where(
            ImageRow.id == ResumableUploadRow.image_id,
            ImageRow.deleted == false(),
            ImageRow.status == "saving",
            ImageRow.upload_claim == ResumableUploadRow.image_claim,
        )
        with self._sessions.begin() as s:
            rows = s.scalars(
                select(ResumableUploadRow).where(
                    or_(ResumableUploadRow.expires_at < now, ~waiting.exists()),
                    # a PATCH still writing is left alone: its own end (or its stalling) comes first
                    or_(ResumableUploadRow.patch_claim.is_(None), ResumableUploadRow.patch_beat_at < now - stale_after),
                )
            )
            return [_record(r) for r in rows]
