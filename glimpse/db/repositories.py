"""ImageRepository: every read and write of image records, with compare-and-swap saves."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, false, func, or_, select, true, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glimpse.db.image_data import ImageDataWrites
from glimpse.db.models import (
    ImageRow,
    LocationRow,
    MemberRow,
    PropertyRow,
    ReservationRow,
    SharedDataRow,
    TagRow,
    table_of,
    utcnow,
)
from glimpse.db.quotas import count_images, lock_project
from glimpse.db.session import SessionFactory, rowcount
from glimpse.db.shared_data import is_shared, unlink
from glimpse.db.tasks import hold_claim
from glimpse.domain.entities import Comparison, Fence, Image, ImageQuery, Location, Member
from glimpse.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge

COLUMN_FIELDS = (
    "name", "status", "visibility", "protected", "os_hidden", "owner", "checksum", "os_hash_algo",
    "os_hash_value", "size", "virtual_size", "container_format", "disk_format", "min_disk", "min_ram",
)  # fmt: skip
NULLABLE_SORT = {"name": "", "size": -1, "container_format": "", "disk_format": ""}


def _to_record(row: ImageRow) -> Image:
    return Image(
        id=row.id,
        **{f: getattr(row, f) for f in COLUMN_FIELDS},
        created_at=row.created_at,
        updated_at=row.updated_at,
        tags=[t.value for t in row.tags],
        properties={p.name: p.value for p in row.properties},
        locations=[Location(url=loc.url, metadata=json.loads(loc.meta)) for loc in row.locations],
        revision=row.revision,
    )


class ImageRepository(ImageDataWrites):
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --- reads -----------------------------------------------------------------------------
    def get(self, image_id: str) -> Image:
        with self._tx() as s:
            row = s.get(ImageRow, image_id)
            if row is None or row.deleted:
                raise NotFound(f"No image found with ID {image_id}")
            return _to_record(row)

    def members(self, image_id: str) -> list[Member]:
        with self._tx() as s:
            rows = s.scalars(select(MemberRow).where(MemberRow.image_id == image_id).order_by(MemberRow.id))
            return [Member(r.image_id, r.member, r.status, r.created_at, r.updated_at) for r in rows]

    def member(self, image_id: str, member_id: str) -> Member:
        with self._tx() as s:
            row = s.scalar(select(MemberRow).where(MemberRow.image_id == image_id, MemberRow.member == member_id))
            if row is None:
                raise NotFound(f"{member_id} is not a member of image {image_id}")
            return Member(row.image_id, row.member, row.status, row.created_at, row.updated_at)

    def add_member(self, image_id: str, member_id: str, quota: int) -> Member:
        """Add a pending member; Conflict when it is one already, TooLarge past the quota."""
        now = utcnow()
        try:
            with self._tx() as s:
                _lock_image(s, image_id)  # concurrent adds queue here, so the count below stays true
                count = s.scalar(select(func.count()).where(MemberRow.image_id == image_id)) or 0
                if 0 <= quota <= count:
                    raise TooLarge(f"Maximum number of members exceeded (limit {quota}).")
                s.add(MemberRow(image_id=image_id, member=member_id, status="pending", created_at=now, updated_at=now))
        except IntegrityError as exc:
            raise Conflict(f"{member_id} is already a member of image {image_id}.") from exc
        return self.member(image_id, member_id)

    def set_member_status(self, image_id: str, member_id: str, status: str) -> Member:
        with self._tx() as s:
            result = s.execute(
                update(MemberRow)
                .where(MemberRow.image_id == image_id, MemberRow.member == member_id)
                .values(status=status, updated_at=utcnow())
            )
            if rowcount(result) != 1:
                raise NotFound(f"{member_id} is not a member of image {image_id}")
        return self.member(image_id, member_id)

    def delete_member(self, image_id: str, member_id: str) -> None:
        with self._tx() as s:
            result = s.execute(
                table_of(MemberRow).delete().where(MemberRow.image_id == image_id, MemberRow.member == member_id)
            )
            if rowcount(result) != 1:
                raise NotFound(f"{member_id} is not a member of image {image_id}")

    def member_status(self, image_id: str, project_id: str) -> str | None:
        with self._tx() as s:
            return s.scalar(
                select(MemberRow.status).where(MemberRow.image_id == image_id, MemberRow.member == project_id)
            )

    def list(self, q: ImageQuery) -> builtins.list[Image]:
        with self._tx() as s:
            stmt = select(ImageRow).where(ImageRow.deleted == false(), *self._conditions(q))
            order = [self._sort_expr(key, direction) for key, direction in q.sort]
            if q.marker is not None:
                marker = s.get(ImageRow, q.marker)
                if marker is None or marker.deleted:
                    raise BadRequest(f"No image found with ID {q.marker}")
                stmt = stmt.where(self._after(q.sort, marker))
            stmt = stmt.order_by(*order).limit(q.limit)
            return [_to_record(row) for row in s.scalars(stmt)]

    # --- query building ----------------------------------------------------------------------
    @staticmethod
    def _column(key: str) -> Any:
        col = getattr(ImageRow, key)
        if key in NULLABLE_SORT:
            return func.coalesce(col, NULLABLE_SORT[key])
        return col

    def _sort_expr(self, key: str, direction: str) -> Any:
        col = self._column(key)
        return col.asc() if direction == "asc" else col.desc()

    def _after(self, sort: builtins.list[tuple[str, str]], marker: ImageRow) -> ColumnElement[bool]:
        """Keyset condition: rows strictly after the marker in the sort order (sort ends with id)."""
        directions = {direction for _, direction in sort}
        if len(directions) == 1:
            # One direction: a row-value comparison, which the (created_at, id) index answers as a range.
            cols = tuple_(*(self._column(k) for k, _ in sort))
            values = tuple_(*(self._marker_value(marker, k) for k, _ in sort))
            return cols > values if directions == {"asc"} else cols < values
        clauses = []
        for i, (key, direction) in enumerate(sort):
            equal = [self._column(k) == self._marker_value(marker, k) for k, _ in sort[:i]]
            col, value = self._column(key), self._marker_value(marker, key)
            clauses.append(and_(*equal, col > value if direction == "asc" else col < value))
        return or_(*clauses)

    @staticmethod
    def _marker_value(marker: ImageRow, key: str) -> Any:
        value = getattr(marker, key)
        return NULLABLE_SORT[key] if value is None and key in NULLABLE_SORT else value

    def _conditions(self, q: ImageQuery) -> builtins.list[ColumnElement[bool]]:
        conds = [self._visibility(q), ImageRow.status != "killed"]
        for key, cmp in q.columns.items():
            conds.append(_compare(getattr(ImageRow, key), cmp))
        for name, value in q.properties.items():
            conds.append(
                exists().where(
                    PropertyRow.image_id == ImageRow.id, PropertyRow.name == name, PropertyRow.value == value
                )
            )
        for tag in q.tags:
            conds.append(exists().where(TagRow.image_id == ImageRow.id, TagRow.value == tag))
        if q.size_min is not None:
            conds.append(ImageRow.size >= q.size_min)
        if q.size_max is not None:
            conds.append(ImageRow.size <= q.size_max)
        if q.os_hidden is not None:
            conds.append(ImageRow.os_hidden == (true() if q.os_hidden else false()))
        return conds

    @staticmethod
    def _visibility(q: ImageQuery) -> ColumnElement[bool]:
        def shared_with_viewer(status: str) -> ColumnElement[bool]:
            member = exists().where(MemberRow.image_id == ImageRow.id, MemberRow.member == q.viewer)
            if status != "all":
                member = exists().where(
                    MemberRow.image_id == ImageRow.id, MemberRow.member == q.viewer, MemberRow.status == status
                )
            return and_(ImageRow.visibility == "shared", member)

        vis, viewer = q.visibility, q.viewer
        if viewer is None:  # admin: everything but others' community images, or the visibility asked for
            if vis == "all":
                return true()
            if vis is None:
                if q.admin_project is None:
                    return ImageRow.visibility != "community"
                return or_(ImageRow.visibility != "community", ImageRow.owner == q.admin_project)
            return ImageRow.visibility == vis
        owned = ImageRow.owner == viewer
        if vis == "public":
            return ImageRow.visibility == "public"
        if vis == "community":
            return ImageRow.visibility == "community"
        if vis == "private":
            return and_(ImageRow.visibility == "private", owned)
        if vis == "shared":
            return or_(and_(ImageRow.visibility == "shared", owned), shared_with_viewer(q.member_status))
        default = or_(ImageRow.visibility == "public", owned, shared_with_viewer(q.member_status))
        if vis == "all":
            return or_(default, ImageRow.visibility == "community")
        return default

    # --- writes ------------------------------------------------------------------------------
    def add(self, image: Image, max_images: int | None = None) -> Image:
        """Insert the image; with max_images, only while its project owns fewer images than that."""
        now = utcnow()
        row = ImageRow(id=image.id, created_at=now, updated_at=now, deleted=False, revision=0)
        for f in COLUMN_FIELDS:
            setattr(row, f, getattr(image, f))
        row.properties = [PropertyRow(name=k, value=v) for k, v in image.properties.items()]
        row.tags = [TagRow(value=t) for t in dict.fromkeys(image.tags)]
        try:
            with self._tx() as s:
                if s.get(ImageRow, image.id) is not None:
                    raise Conflict(f"Image ID {image.id} already exists!")
                if max_images is not None and image.owner is not None:
                    lock_project(s, image.owner)
                    if count_images(s, image.owner) >= max_images:
                        raise TooLarge(f"Maximum number of images exceeded: the limit is {max_images}.")
                s.add(row)
        except IntegrityError as exc:
            raise Conflict(f"Image ID {image.id} already exists!") from exc
        return self.get(image.id)

    def save(self, image: Image) -> Image:
        """Write every mutable field, only if nobody saved the image since it was read (else 409)."""
        with self._tx() as s:
            values = {f: getattr(image, f) for f in COLUMN_FIELDS}
            result = s.execute(
                update(ImageRow)
                .where(ImageRow.id == image.id, ImageRow.revision == image.revision, ImageRow.deleted == false())
                .values(**values, updated_at=utcnow(), revision=image.revision + 1)
            )
            if rowcount(result) != 1:
                raise Conflict(f"Image {image.id} was changed by another request; retry with its new state.")
            row = s.get(ImageRow, image.id)
            assert row is not None
            s.refresh(row)
            self._sync_children(s, row, image)
        return self.get(image.id)

    @staticmethod
    def _sync_children(s: Session, row: ImageRow, image: Image) -> None:
        current = {p.name: p for p in row.properties}
        for name, prop in current.items():
            if name not in image.properties:
                row.properties.remove(prop)
            elif prop.value != image.properties[name]:
                prop.value = image.properties[name]
        for name, value in image.properties.items():
            if name not in current:
                row.properties.append(PropertyRow(name=name, value=value))
        wanted = list(dict.fromkeys(image.tags))
        for tag in list(row.tags):
            if tag.value not in wanted:
                row.tags.remove(tag)
        have = {t.value for t in row.tags}
        row.tags.extend(TagRow(value=t) for t in wanted if t not in have)
        s.flush()

    def transition(
        self,
        image_id: str,
        from_status: str,
        to_status: str,
        fence: Fence | None = None,
        if_claim: str | None = None,
        **values: Any,
    ) -> None:
        """Move the image between statuses atomically; Conflict when it is no longer in from_status, or
        (with a fence, or if_claim: an upload's claim token) when that claim was lost: one transaction."""
        with self._tx() as s:
            if fence is not None:
                hold_claim(s, fence)
            conditions = [ImageRow.id == image_id, ImageRow.status == from_status, ImageRow.deleted == false()]
            if if_claim is not None:
                conditions.append(ImageRow.upload_claim == if_claim)
            result = s.execute(
                update(ImageRow)
                .where(*conditions)
                .values(status=to_status, updated_at=utcnow(), revision=ImageRow.revision + 1, **values)
            )
            if rowcount(result) != 1:
                raise Conflict(f"Image {image_id} is no longer {from_status}.")

    def with_data(self, after: str | None = None, limit: int = 100) -> builtins.list[Image]:
        """A page of the images holding data (active or deactivated), in id order after `after`."""
        with self._tx() as s:
            stmt = select(ImageRow).where(ImageRow.deleted == false(), ImageRow.status.in_(("active", "deactivated")))
            if after is not None:
                stmt = stmt.where(ImageRow.id > after)
            return [_to_record(row) for row in s.scalars(stmt.order_by(ImageRow.id).limit(limit))]

    def referenced_urls(self) -> set[str]:
        """Every location any image (a deleted one waiting for the scrubber included) still refers to, and the
        shared data uploads hold."""
        with self._tx() as s:
            locations = set(s.scalars(select(LocationRow.url).where(LocationRow.status != "deleted")))
            return locations | set(s.scalars(select(SharedDataRow.url)))

    @contextmanager
    def holding(self, image_id: str, url: str) -> Iterator[tuple[bool, Image | None]]:
        """Under the image's row lock (the write lock on SQLite) until the block ends, so no upload can begin
        and no copy be recorded meanwhile: whether url is referenced, and the image (None when there is none)."""
        with self._tx() as s:
            s.execute(update(ImageRow).where(ImageRow.id == image_id).values(updated_at=ImageRow.updated_at))
            used = s.scalar(
                select(LocationRow.id).where(LocationRow.url == url, LocationRow.status != "deleted").limit(1)
            )
            row = s.get(ImageRow, image_id)
            yield used is not None or is_shared(s, url), None if row is None else _to_record(row)

    def remove_location(self, image_id: str, url: str, delayed: bool = False) -> bool:
        """Forget one copy of the data; Conflict when it is the image's last one, NotFound when absent.
        True when its data is to be removed now: nothing else refers to it (shared data stays while used).

        delayed: the copy's row stays, pending_delete, for the scrubber to remove its data."""
        with self._tx() as s:
            row = s.get(ImageRow, image_id, with_for_update=True)
            if row is None or row.deleted:
                raise NotFound(f"No image found with ID {image_id}")
            found = [loc for loc in row.locations if loc.url == url]
            if not found:
                raise NotFound(f"Image {image_id} has no location {url}.")
            if len(row.locations) <= 1:
                raise Conflict(
                    "Cannot delete image data from the only store containing it. Consider deleting the image instead."
                )
            row.updated_at = utcnow()
            if delayed:
                found[0].status = "pending_delete"
                s.flush()
                s.expire(row, ["locations"])
                return False
            row.locations.remove(found[0])
            return unlink(s, url)

    def delete(self, image_id: str, revision: int | None = None, delayed: bool = False) -> builtins.list[Location]:
        """Mark the image deleted (its id stays reserved) and hand back the locations to purge.

        A compare-and-swap: only an unprotected image (Forbidden otherwise) and, given the revision the
        caller read, only if nobody changed it since (Conflict): a racing protected=true always wins.
        delayed (delayed_delete, as Glance has it): an image that is not queued goes to pending_delete
        instead, hidden like a deleted one; its data, locations, properties, tags and members stay for
        the scrubber (or `glimpse scrub --restore`), and nothing is handed back to purge now.
        """
        now = utcnow()
        # A queued image has no data to keep: it is deleted at once, as Glance does.
        status = case((ImageRow.status == "queued", "deleted"), else_="pending_delete") if delayed else "deleted"
        wanted = [ImageRow.id == image_id, ImageRow.deleted == false(), ImageRow.protected == false()]
        if revision is not None:
            wanted.append(ImageRow.revision == revision)
        with self._tx() as s:
            result = s.execute(
                update(ImageRow)
                .where(*wanted)
                .values(
                    status=status,
                    deleted=True,
                    deleted_at=now,
                    updated_at=now,
                    revision=ImageRow.revision + 1,
                    upload_node=None,
                    upload_claim=None,
                )
            )
            row = s.get(ImageRow, image_id)
            if rowcount(result) != 1:
                if row is None or row.deleted:
                    raise NotFound(f"No image found with ID {image_id}")
                if row.protected:
                    raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
                raise Conflict(f"Image {image_id} was changed by another request; retry with its new state.")
            assert row is not None
            # Whatever upload or import was under way has nothing to reserve for any more.
            s.execute(table_of(ReservationRow).delete().where(ReservationRow.image_id == image_id))
            if row.status == "pending_delete":
                s.execute(
                    update(LocationRow)
                    .where(LocationRow.image_id == image_id, LocationRow.status == "active")
                    .values(status="pending_delete")
                )
                return []
            # Shared data another image still uses stays: only the last reference hands it back to purge.
            locations = [
                Location(url=loc.url, metadata=json.loads(loc.meta)) for loc in row.locations if unlink(s, loc.url)
            ]
            row.properties.clear()
            row.tags.clear()
            row.locations.clear()
            s.execute(table_of(MemberRow).delete().where(MemberRow.image_id == image_id))
            return locations


def _lock_image(s: Session, image_id: str) -> None:
    """Hold the image row until the transaction ends: an UPDATE that changes nothing is a row lock on
    PostgreSQL and MariaDB and takes SQLite's single write lock, so what is read after it is current."""
    s.execute(update(ImageRow).where(ImageRow.id == image_id).values(revision=ImageRow.revision))
    row = s.get(ImageRow, image_id)
    if row is None or row.deleted:
        raise NotFound(f"No image found with ID {image_id}")


def _compare(col: Any, cmp: Comparison) -> ColumnElement[bool]:
    if isinstance(cmp.value, datetime):
        return _compare_time(col, cmp.op, cmp.value)
    ops: dict[str, Callable[[Any], ColumnElement[bool]]] = {
        "eq": lambda v: col == v,
        "neq": lambda v: col != v,
        "gt": lambda v: col > v,
        "gte": lambda v: col >= v,
        "lt": lambda v: col < v,
        "lte": lambda v: col <= v,
        "in": lambda v: col.in_(v),
    }
    return ops[cmp.op](cmp.value)


def _compare_time(col: Any, op: str, value: datetime) -> ColumnElement[bool]:
    """Times are shown to the second but stored finer: a shown time stands for its whole second."""
    start, end = value, value + timedelta(seconds=1)
    ops: dict[str, Callable[[], ColumnElement[bool]]] = {
        "eq": lambda: and_(col >= start, col < end),
        "neq": lambda: or_(col < start, col >= end),
        "gt": lambda: col >= end,
        "gte": lambda: col >= start,
        "lt": lambda: col < start,
        "lte": lambda: col < end,
    }
    return ops[op]()
