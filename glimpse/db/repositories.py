"""ImageRepository: every read and write of image records, with compare-and-swap saves."""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    CompoundSelect,
    Connection,
    Row,
    Select,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    insert,
    literal_column,
    null,
    or_,
    select,
    true,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glimpse.db.image_data import ImageDataWrites
from glimpse.db.models import (
    NEXT_REVISION,
    WAITING,
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
from glimpse.db.session import SessionFactory, engine_of, rowcount
from glimpse.db.shared_data import is_shared, unlink
from glimpse.db.tasks import hold_claim
from glimpse.domain.entities import Comparison, Fence, Image, ImageQuery, Location, Member
from glimpse.errors import BadRequest, Conflict, ImageProtected, NotFound, TooLarge

# In Image's order, as IMAGE_FIELDS is: _image builds an Image from a row by position.
COLUMN_FIELDS = (
    "owner", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo",
    "os_hash_value", "size", "virtual_size", "container_format", "disk_format", "min_disk", "min_ram",
)  # fmt: skip
NULLABLE_SORT = {"name": "", "size": -1, "container_format": "", "disk_format": ""}


IMAGES, PROPERTIES, TAGS, LOCATIONS = (table_of(r) for r in (ImageRow, PropertyRow, TagRow, LocationRow))
IMAGE_FIELDS = ("id", *COLUMN_FIELDS, "created_at", "updated_at", "revision")
IMAGE_COLUMNS = tuple(IMAGES.c[f] for f in IMAGE_FIELDS)


_P, _T, _L, _M = PROPERTIES.c, TAGS.c, LOCATIONS.c, table_of(MemberRow).c


@functools.lru_cache(maxsize=128)
def _children_of(count: int) -> tuple[CompoundSelect[Any], tuple[str, ...]]:
    """The properties (by name), tags and active locations (by id) of `count` images in one round trip: kind,
    image id, two values, then what orders them; and the names of its parameters, one per image id.

    One statement per count of images, its ids bound one by one: SQLAlchemy compiles each once, where an
    expanding IN (one parameter for a list) has its SQL rewritten at every execution, a tenth of a show's CPU."""
    names = tuple(f"id{i}" for i in range(count))
    ids: builtins.list[BindParameter[str]] = [bindparam(name) for name in names]
    stmt = union_all(
        select(literal_column("'p'"), _P.image_id, _P.name, _P.value, _P.name, _P.id).where(_P.image_id.in_(ids)),
        select(literal_column("'t'"), _T.image_id, _T.value, null(), literal_column("''"), _T.id).where(
            _T.image_id.in_(ids)
        ),
        select(literal_column("'l'"), _L.image_id, _L.url, _L.meta, literal_column("''"), _L.id).where(
            _L.image_id.in_(ids), _L.status == "active"
        ),
    ).order_by(literal_column("1"), literal_column("5"), literal_column("6"))
    return stmt, names


# Built once: SQLAlchemy then finds their compiled form in its cache without constructing them per request.
LIVE_IMAGES = select(*IMAGE_COLUMNS).where(IMAGES.c.deleted == false())
LIVE_IMAGE = LIVE_IMAGES.where(IMAGES.c.id == bindparam("id"))


def _whole_image() -> Select[Any]:
    """One live image with its properties, tags and active locations in one statement: the image's columns, then a
    child's kind and two values (none for an image without children), one row per child. A show's second round trip
    through SQLAlchemy cost more than repeating the image's columns on each of its few children."""
    image_id: BindParameter[str] = bindparam("id")
    children = union_all(
        select(
            literal_column("'p'").label("kind"),
            _P.name.label("first"),
            _P.value.label("second"),
            _P.name.label("sort_key"),
            _P.id.label("child_id"),
        ).where(_P.image_id == image_id),
        select(literal_column("'t'"), _T.value, null(), literal_column("''"), _T.id).where(_T.image_id == image_id),
        select(literal_column("'l'"), _L.url, _L.meta, literal_column("''"), _L.id).where(
            _L.image_id == image_id, _L.status == "active"
        ),
    ).subquery("children")
    c = children.c
    return (
        select(*IMAGE_COLUMNS, c.kind, c.first, c.second)
        .select_from(IMAGES.outerjoin(children, true()))
        .where(IMAGES.c.id == image_id, IMAGES.c.deleted == false())
        .order_by(c.kind, c.sort_key, c.child_id)
    )  # fmt: skip


WHOLE_IMAGE = _whole_image()


def _image(
    row: Sequence[Any],
    tags: builtins.list[str],
    properties: dict[str, str],
    locations: builtins.list[Location],
) -> Image:
    """An Image from a row of IMAGE_COLUMNS, whose columns are Image's fields in its order up to updated_at, then
    revision: by position, a third of the cost of naming each field (twenty times a page)."""
    return Image(*row[:-1], tags=tags, properties=properties, locations=locations, revision=row[-1])  # type: ignore[misc]


def _whole(conn: Connection, image_id: str) -> Image | None:
    """The live image `image_id` with its children (WHOLE_IMAGE), or None."""
    rows = conn.execute(WHOLE_IMAGE, {"id": image_id}).all()
    if not rows:
        return None
    properties: dict[str, str] = {}
    tags: builtins.list[str] = []
    locations: builtins.list[Location] = []
    width = len(IMAGE_FIELDS)
    for row in rows:
        kind, first, second = row[width:]
        if kind == "p":
            properties[first] = second
        elif kind == "t":
            tags.append(first)
        elif kind == "l":
            locations.append(Location(url=first, metadata=json.loads(second)))
    return _image(rows[0][:width], tags, properties, locations)


def _records(conn: Connection, stmt: Select[Any], params: dict[str, Any] | None = None) -> builtins.list[Image]:
    """The images `stmt` (a select of IMAGE_COLUMNS) finds, in its order, with their properties, tags and
    locations: plain rows from two queries (the relationships' selectin loading would issue four) and no
    ORM objects, whose building was most of a read's CPU time."""
    rows = conn.execute(stmt, params).all()
    if not rows:
        return []
    children, names = _children_of(len(rows))
    properties: dict[str, dict[str, str]] = {row.id: {} for row in rows}
    tags: dict[str, builtins.list[str]] = {row.id: [] for row in rows}
    locations: dict[str, builtins.list[Location]] = {row.id: [] for row in rows}
    for kind, image_id, first, second, _, _ in conn.execute(
        children, dict(zip(names, [row.id for row in rows], strict=True))
    ):
        if kind == "p":
            properties[image_id][first] = second
        elif kind == "t":
            tags[image_id].append(first)
        else:
            locations[image_id].append(Location(url=first, metadata=json.loads(second)))
    return [_image(row, tags[row.id], properties[row.id], locations[row.id]) for row in rows]


PAGES_KEPT = 256


def _query_key(q: ImageQuery) -> tuple[Any, ...]:
    """Everything of a list query without a deprecation filter but its marker, as a key (TypeError when a
    value is a list).
    The types too: True and 1 are equal keys but not the same filter."""
    columns = tuple((name, cmp.op, cmp.value, type(cmp.value)) for name, cmp in q.columns.items())
    return (
        q.viewer, q.admin_project, q.visibility, q.member_status, columns, tuple(q.properties.items()),
        tuple(q.tags), q.size_min, q.size_max, q.os_hidden, tuple(q.sort), q.limit,
    )  # fmt: skip


# A member's fields in the order of Member's.
_MEMBERS = select(MemberRow.image_id, MemberRow.member, MemberRow.status, MemberRow.created_at, MemberRow.updated_at)


def _row(conn: Connection, image_id: str) -> Row[Any] | None:
    """The live (not deleted) image's columns, or None."""
    return conn.execute(LIVE_IMAGE, {"id": image_id}).first()


def to_image(row: ImageRow) -> Image:
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
        self._engine = engine_of(sessions)
        self._pages: dict[tuple[Any, ...] | None, Select[Any]] = {}

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A connection for reads: Core statements, no ORM Session; rolled back (nothing to commit) on close."""
        with self._engine.connect() as conn:
            yield conn

    # --- reads -----------------------------------------------------------------------------
    def get(self, image_id: str) -> Image:
        with self._read() as conn:
            found = _whole(conn, image_id)
        if found is None:
            raise NotFound(f"No image found with ID {image_id}")
        return found

    def members(self, image_id: str) -> list[Member]:
        with self._read() as conn:
            rows = conn.execute(_MEMBERS.where(MemberRow.image_id == image_id).order_by(MemberRow.id))
            return [Member(*row) for row in rows]

    def member(self, image_id: str, member_id: str) -> Member:
        with self._read() as conn:
            row = conn.execute(_MEMBERS.where(MemberRow.image_id == image_id, MemberRow.member == member_id)).first()
        if row is None:
            raise NotFound(f"{member_id} is not a member of image {image_id}")
        return Member(*row)

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
        """A read (a show of a shared image runs it): it takes no place in the writers' queue."""
        with self._read() as conn:
            status: str | None = conn.execute(
                select(MemberRow.status).where(MemberRow.image_id == image_id, MemberRow.member == project_id)
            ).scalar()
            return status

    def list(self, q: ImageQuery) -> builtins.list[Image]:
        with self._read() as conn:
            stmt = self._page(q)
            if q.marker is not None:
                marker = _row(conn, q.marker)
                if marker is None:
                    raise BadRequest(f"No image found with ID {q.marker}")
                stmt = stmt.where(self._after(q.sort, marker))
            return _records(conn, stmt)

    def _page(self, q: ImageQuery) -> Select[Any]:
        """The list's statement but for the marker's condition: built once per distinct query. Building it and
        SQLAlchemy's cache key of a new statement were a tenth of a list's CPU time, for the few queries
        clients repeat (a project's images, a dashboard's page); a statement never changes once built."""
        key, stmt = None, None
        if q.deprecation is None:  # its condition holds the time of the request
            try:
                key = _query_key(q)
                stmt = self._pages.get(key)
            except TypeError:  # a value that cannot be a key (a list of an `in` filter)
                key = None
        if stmt is None:
            order = [self._sort_expr(name, direction) for name, direction in q.sort]
            stmt = LIVE_IMAGES.where(*self._conditions(q)).order_by(*order).limit(q.limit)
            if key is not None:
                if len(self._pages) >= PAGES_KEPT:
                    self._pages.clear()
                self._pages[key] = stmt
        return stmt

    # --- query building ----------------------------------------------------------------------
    @staticmethod
    def _column(key: str) -> Any:
        col = IMAGES.c[key]
        if key in NULLABLE_SORT:
            return func.coalesce(col, NULLABLE_SORT[key])
        return col

    def _sort_expr(self, key: str, direction: str) -> Any:
        col = self._column(key)
        return col.asc() if direction == "asc" else col.desc()

    def _after(self, sort: builtins.list[tuple[str, str]], marker: Row[Any]) -> ColumnElement[bool]:
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
    def _marker_value(marker: Row[Any], key: str) -> Any:
        value = getattr(marker, key)
        return NULLABLE_SORT[key] if value is None and key in NULLABLE_SORT else value

    def _conditions(self, q: ImageQuery) -> builtins.list[ColumnElement[bool]]:
        conds = [self._visibility(q), IMAGES.c.status != "killed"]
        for key, cmp in q.columns.items():
            conds.append(_compare(IMAGES.c[key], cmp))
        for name, value in q.properties.items():
            conds.append(exists().where(_P.image_id == IMAGES.c.id, _P.name == name, _P.value == value))
        for tag in q.tags:
            conds.append(exists().where(_T.image_id == IMAGES.c.id, _T.value == tag))
        if q.size_min is not None:
            conds.append(IMAGES.c.size >= q.size_min)
        if q.size_max is not None:
            conds.append(IMAGES.c.size <= q.size_max)
        if q.os_hidden is not None:
            conds.append(IMAGES.c.os_hidden == (true() if q.os_hidden else false()))
        if q.deprecation is not None and q.now is not None:
            conds.append(_deprecation_in(q.deprecation, q.now))
        return conds

    def property_values(self, q: ImageQuery, name: str, after: str | None, limit: int) -> builtins.list[str]:
        """The distinct values of one property among the images the query finds, in order, after `after`."""
        with self._tx() as s:
            stmt = (
                select(PropertyRow.value)
                .join(ImageRow, ImageRow.id == PropertyRow.image_id)
                .where(PropertyRow.name == name, ImageRow.deleted == false(), *self._conditions(q))
                .distinct()
            )
            if after is not None:
                stmt = stmt.where(PropertyRow.value > after)
            return list(s.scalars(stmt.order_by(PropertyRow.value).limit(limit)))

    @staticmethod
    def _visibility(q: ImageQuery) -> ColumnElement[bool]:
        def shared_with_viewer(status: str) -> ColumnElement[bool]:
            member = exists().where(_M.image_id == IMAGES.c.id, _M.member == q.viewer)
            if status != "all":
                member = exists().where(_M.image_id == IMAGES.c.id, _M.member == q.viewer, _M.status == status)
            return and_(IMAGES.c.visibility == "shared", member)

        vis, viewer = q.visibility, q.viewer
        if viewer is None:  # admin: everything but others' community images, or the visibility asked for
            if vis == "all":
                return true()
            if vis is None:
                if q.admin_project is None:
                    return IMAGES.c.visibility != "community"
                return or_(IMAGES.c.visibility != "community", IMAGES.c.owner == q.admin_project)
            return IMAGES.c.visibility == vis
        owned = IMAGES.c.owner == viewer
        if vis == "public":
            return IMAGES.c.visibility == "public"
        if vis == "community":
            return IMAGES.c.visibility == "community"
        if vis == "private":
            return and_(IMAGES.c.visibility == "private", owned)
        if vis == "shared":
            return or_(and_(IMAGES.c.visibility == "shared", owned), shared_with_viewer(q.member_status))
        default = or_(IMAGES.c.visibility == "public", owned, shared_with_viewer(q.member_status))
        if vis == "all":
            return or_(default, IMAGES.c.visibility == "community")
        return default

    # --- writes ------------------------------------------------------------------------------
    def add(self, image: Image, max_images: int | None = None) -> Image:
        """Insert the image; with max_images, only while its project owns fewer images than that. Plain
        INSERTs, and the new row read back in the same transaction: one commit, no ORM unit of work. An id in
        use, a deleted image's too (its tombstone keeps the row), fails the INSERT on the primary key: 409."""
        now = utcnow()
        row = {f: getattr(image, f) for f in COLUMN_FIELDS}
        row.update(id=image.id, created_at=now, updated_at=now, deleted=False, revision=0)
        tags = list(dict.fromkeys(image.tags))
        try:
            with self._tx() as s:
                if max_images is not None and image.owner is not None:
                    lock_project(s, image.owner)
                    if count_images(s, image.owner) >= max_images:
                        raise TooLarge(f"Maximum number of images exceeded: the limit is {max_images}.")
                # The writes go through the session (not its connection) so its execute hooks see them: the audit
                # entry of the creation is written in this transaction.
                s.execute(insert(IMAGES), row)
                if image.properties:
                    props = [{"image_id": image.id, "name": k, "value": v} for k, v in image.properties.items()]
                    s.execute(insert(PROPERTIES), props)
                if tags:
                    s.execute(insert(TAGS), [{"image_id": image.id, "value": t} for t in tags])
                stored = s.connection().execute(LIVE_IMAGE, {"id": image.id}).one()
        except IntegrityError as exc:
            raise Conflict(f"Image ID {image.id} already exists!") from exc
        # The row as the database keeps it; its properties and tags as written just now (a new image has no
        # locations), in the order a read gives them: properties by name, tags as added.
        return _image(stored, tags, dict(sorted(image.properties.items())), [])

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
                .values(status=to_status, updated_at=utcnow(), revision=NEXT_REVISION, **values)
            )
            if rowcount(result) != 1:
                raise Conflict(f"Image {image_id} is no longer {from_status}.")

    def with_data(self, after: str | None = None, limit: int = 100) -> builtins.list[Image]:
        """A page of the images holding data (active or deactivated), in id order after `after`."""
        with self._tx() as s:
            stmt = LIVE_IMAGES.where(ImageRow.status.in_(("active", "deactivated")))
            if after is not None:
                stmt = stmt.where(ImageRow.id > after)
            return _records(s.connection(), stmt.order_by(ImageRow.id).limit(limit))

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
            yield used is not None or is_shared(s, url), None if row is None else to_image(row)

    def remove_location(self, image_id: str, url: str, delayed: bool = False) -> bool:
        """Forget one copy of the data; Conflict when it is the image's last one, NotFound when absent.
        True when its data is to be removed now: nothing else refers to it (shared data stays while used).

        delayed: the copy's row stays, pending_delete, for the scrubber to remove its data. Otherwise a copy whose data
        is to be removed stays recorded (`deleting`) until it is gone (`data_removed`), or for `glimpse scrub`."""
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
            if not delayed and not unlink(s, url):  # shared data another image still uses: only this reference goes
                row.locations.remove(found[0])
                return False
            found[0].status = "pending_delete" if delayed else "deleting"
            s.flush()
            s.expire(row, ["locations"])
            return not delayed

    def delete(
        self, image_id: str, revision: int | None = None, delayed: bool = False, keep_for: timedelta | None = None
    ) -> builtins.list[Location]:
        """Mark the image deleted (its id stays reserved) and hand back the locations to purge.

        A compare-and-swap: only an unprotected image (Forbidden otherwise) and, given the revision the
        caller read, only if nobody changed it since (Conflict): a racing protected=true always wins.
        delayed (delayed_delete, as Glance has it): an image that is not queued goes to pending_delete
        instead, hidden like a deleted one; its data, locations, properties, tags and members stay for
        the scrubber (or `glimpse scrub --restore`), and nothing is handed back to purge now.
        keep_for (the recycle bin): any image, queued too, goes to pending_delete that way, remembering its status,
        restorable by its owner for that long.
        """
        now = utcnow()
        # A queued image has no data to keep: it is deleted at once, as Glance does (the bin keeps its record).
        status: Any = "deleted"
        if keep_for is not None:
            status = "pending_delete"
        elif delayed:
            status = case((ImageRow.status == "queued", "deleted"), else_="pending_delete")
        wanted = [ImageRow.id == image_id, ImageRow.deleted == false(), ImageRow.protected == false()]
        if revision is not None:
            wanted.append(ImageRow.revision == revision)
        with self._tx() as s:
            binned: dict[str, Any] = {}
            if keep_for is not None:
                # Its own statement first (MariaDB's SET reads columns already assigned in the same statement).
                result = s.execute(update(ImageRow).where(*wanted).values(status_before_delete=ImageRow.status))
                binned = {"bin_expires_at": now + keep_for}
                wanted = [ImageRow.id == image_id] if rowcount(result) == 1 else wanted
            result = s.execute(
                update(ImageRow)
                .where(*wanted)
                .values(
                    status=status,
                    deleted=True,
                    deleted_at=now,
                    updated_at=now,
                    revision=NEXT_REVISION,
                    upload_node=None,
                    upload_claim=None,
                    **binned,
                )
            )
            row = s.get(ImageRow, image_id)
            if rowcount(result) != 1:
                if row is None or row.deleted:
                    raise NotFound(f"No image found with ID {image_id}")
                if row.protected:
                    raise ImageProtected(image_id)
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
            # Shared data another image still uses stays: only the last reference hands it back to purge. The
            # copies to remove stay recorded, `deleting`, until their data is gone (`data_removed`): a store that
            # fails, or a process killed before it got there, leaves them to `glimpse scrub`, never unrecorded.
            copies = s.execute(
                select(LocationRow.id, LocationRow.url, LocationRow.meta).where(
                    LocationRow.image_id == image_id, LocationRow.status == "active"
                )
            ).all()
            doomed = [(c.id, Location(url=c.url, metadata=json.loads(c.meta))) for c in copies if unlink(s, c.url)]
            if doomed:
                ids = [i for i, _ in doomed]
                s.execute(update(LocationRow).where(LocationRow.id.in_(ids)).values(status="deleting"))
            s.execute(LOCATIONS.delete().where(LocationRow.image_id == image_id, LocationRow.status == "active"))
            row.properties.clear()
            row.tags.clear()
            s.execute(table_of(MemberRow).delete().where(MemberRow.image_id == image_id))
            return [location for _, location in doomed]

    def waiting_copies(self, image_id: str) -> builtins.list[Location]:
        """The image's copies whose data is still to be removed (pending_delete or deleting), for the scrubber."""
        with self._tx() as s:
            rows = s.execute(
                select(LocationRow.url, LocationRow.meta).where(
                    LocationRow.image_id == image_id, LocationRow.status.in_(WAITING)
                )
            ).all()
            return [Location(url=url, metadata=json.loads(meta)) for url, meta in rows]

    def data_removed(self, image_id: str, url: str) -> None:
        """The copy at url, being deleted, is gone from its store: no scrubber needs to look for it any more. A deleted
        image keeps the row, marked deleted, until `glimpse db purge`; a live one forgets it."""
        with self._tx() as s:
            copy = (LocationRow.image_id == image_id) & (LocationRow.url == url) & (LocationRow.status == "deleting")
            if s.scalar(select(ImageRow.deleted).where(ImageRow.id == image_id)):
                s.execute(update(LocationRow).where(copy).values(status="deleted"))
            else:
                s.execute(LOCATIONS.delete().where(copy))


def _deprecation_in(states: tuple[str, ...], at: datetime) -> ColumnElement[bool]:
    """Images whose deprecation state at `at` is one of `states`: the times are stored as sortable UTC text."""
    now = at.strftime("%Y-%m-%dT%H:%M:%SZ")

    def reached(name: str) -> ColumnElement[bool]:
        return exists().where(_P.image_id == IMAGES.c.id, _P.name == name, _P.value <= now)

    obsolete, deprecated = reached("obsolete_at"), reached("deprecate_at")
    by_state = {
        "obsolete": obsolete,
        "deprecated": and_(deprecated, ~obsolete),
        "active": and_(~deprecated, ~obsolete),
    }
    return or_(*(by_state[one] for one in states))


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
