"""Whole-image reads and writes, tombstones included: how an image brought from another database lands.

Unlike ImageRepository's saves, a write here sets every column to the given values (the id, status and
timestamps too), because the record is a copy of one kept elsewhere, not a change a user asked for.
"""

from __future__ import annotations

import json

from sqlalchemy import delete, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from glimpse.db.models import ImageRow, LocationRow, MemberRow, PropertyRow, TagRow, utcnow
from glimpse.db.repositories import COLUMN_FIELDS
from glimpse.db.session import SessionFactory
from glimpse.domain.entities import Image, ImageSnapshot, Location, Member
from glimpse.errors import BadRequest


class ImageSnapshots:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def read(self, image_id: str) -> ImageSnapshot | None:
        with self._sessions.begin() as s:
            row = s.get(ImageRow, image_id)
            if row is None:
                return None
            members = s.scalars(select(MemberRow).where(MemberRow.image_id == image_id).order_by(MemberRow.member))
            return ImageSnapshot(
                image=_image(row),
                deleted=row.deleted,
                deleted_at=row.deleted_at,
                members=[Member(m.image_id, m.member, m.status, m.created_at, m.updated_at) for m in members],
            )

    def write(self, snapshot: ImageSnapshot) -> None:
        """Create or overwrite the image with exactly this state, in one transaction."""
        try:
            self._write(snapshot)
        except (DataError, IntegrityError) as exc:  # a value this database cannot hold
            raise BadRequest(f"Image {snapshot.image.id} cannot be stored: {exc.orig}") from None

    def _write(self, snapshot: ImageSnapshot) -> None:
        image = snapshot.image
        with self._sessions.begin() as s:
            row = s.get(ImageRow, image.id, with_for_update=True)
            if row is None:
                row = ImageRow(id=image.id, revision=0)
                s.add(row)
            else:
                row.revision += 1  # a compare-and-swap save that read the old state must fail
            for name in COLUMN_FIELDS:
                setattr(row, name, getattr(image, name))
            row.created_at = image.created_at or utcnow()
            row.updated_at = image.updated_at or row.created_at
            row.deleted, row.deleted_at = snapshot.deleted, snapshot.deleted_at
            row.upload_node = row.upload_claim = row.upload_heartbeat_at = None
            _replace_children(s, row, image)
            s.execute(delete(MemberRow).where(MemberRow.image_id == image.id))
            s.add_all(
                MemberRow(
                    image_id=image.id,
                    member=m.member_id,
                    status=m.status,
                    created_at=m.created_at or row.created_at,
                    updated_at=m.updated_at or row.updated_at,
                )
                for m in snapshot.members
            )


def _image(row: ImageRow) -> Image:
    return Image(
        id=row.id,
        **{name: getattr(row, name) for name in COLUMN_FIELDS},
        created_at=row.created_at,
        updated_at=row.updated_at,
        tags=sorted(t.value for t in row.tags),
        properties={p.name: p.value for p in row.properties},
        locations=[Location(url=loc.url, metadata=json.loads(loc.meta)) for loc in row.locations],
        revision=row.revision,
    )


def _replace_children(s: Session, row: ImageRow, image: Image) -> None:
    """Properties, tags and locations as given; old rows go first (flushed) so unique keys never clash."""
    if {p.name: p.value for p in row.properties} != image.properties:
        row.properties.clear()
        s.flush()
        row.properties.extend(PropertyRow(name=k, value=v) for k, v in image.properties.items())
    if sorted(t.value for t in row.tags) != sorted(set(image.tags)):
        row.tags.clear()
        s.flush()
        row.tags.extend(TagRow(value=t) for t in dict.fromkeys(image.tags))
    have = [(loc.url, json.loads(loc.meta)) for loc in row.locations]
    if have != [(loc.url, loc.metadata) for loc in image.locations]:
        row.locations.clear()
        s.flush()
        now = utcnow()
        row.locations.extend(
            LocationRow(url=loc.url, meta=json.dumps(loc.metadata), status="active", created_at=now)
            for loc in image.locations
        )
    s.flush()
