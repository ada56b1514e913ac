"""Deduplicated image data: reference counts of data held once per store, kept in the transactions that publish,
delete or move an image's copies (db/image_data.py, db/repositories.py, db/scrub_queue.py call these).

The rules, each within the caller's transaction:
- link: a copy being published in a store that already holds the same size and sha512 takes a reference to that
  data and is recorded under its URL (the copy just written is then redundant: the caller removes it after the
  commit); otherwise the copy becomes the store's shared data with one reference.
- unlink: a copy forgotten drops its reference; the last one deletes the row in the same transaction, and only
  then is the data removed (by the caller, after the commit, or by the scrubber). A URL without a row (data
  stored before deduplication, or with it turned off) is its image's alone.
- pin/unpin: an upload that will write nothing (its data exists already) holds a reference meanwhile.

A row exists only while its count is above zero, and every change is one UPDATE on it (a row lock on PostgreSQL
and MariaDB, the database lock on SQLite): a link racing the last unlink either finds the row (and the data stays)
or finds none (and keeps its own copy). Two nodes publishing twins at once both try to insert; the unique key
lets one win, and the other links to it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import ColumnElement, and_, delete, exists, false, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glimpse.db.models import ImageRow, LocationRow, SharedDataPinRow, SharedDataRow, utcnow
from glimpse.db.session import SessionFactory, rowcount
from glimpse.domain.entities import DataKey, Location, StoreUsage
from glimpse.errors import Conflict


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def link(s: Session, key: DataKey, url: str, image_id: str, claim: str | None = None) -> str:
    """The URL the image's copy `url` is recorded under: the shared data's when the store holds a twin. An
    upload's pin on that data (claim: its claim token) becomes the location's reference."""
    if claim is not None:
        pinned = s.get(SharedDataPinRow, (image_id, claim))
        if pinned is not None:
            s.delete(pinned)
            s.flush()
            row = s.get(SharedDataRow, pinned.data_id)
            if row is not None and (row.store, row.size, row.sha512) == (key.store, key.size, key.sha512):
                return row.url  # (the upload checked its data against the declared digest before publishing)
            if row is not None:
                _drop(s, row.id)
    twin = _twin(key)
    for _ in range(2):
        if rowcount(s.execute(update(SharedDataRow).where(twin).values(refs=SharedDataRow.refs + 1))) == 1:
            return str(s.scalar(select(SharedDataRow.url).where(twin)))
        try:
            with s.begin_nested():
                s.add(
                    SharedDataRow(
                        store=key.store, size=key.size, sha512=key.sha512, url=url, url_key=url_key(url), refs=1,
                        created_at=utcnow(),
                    )
                )  # fmt: skip
            return url
        except IntegrityError:
            continue  # another node published the same data meanwhile: link to its copy
    raise Conflict(f"The data of {url} could not be recorded (it changed twice meanwhile); retry.")


def _uploading() -> ColumnElement[bool]:
    """An image whose upload (or staging) is in progress: its upload_claim is the live upload's."""
    return and_(ImageRow.deleted == false(), ImageRow.status.in_(("saving", "uploading")))


def _twin(key: DataKey) -> ColumnElement[bool]:
    return and_(SharedDataRow.store == key.store, SharedDataRow.size == key.size, SharedDataRow.sha512 == key.sha512)


def unlink(s: Session, url: str) -> bool:
    """Drop one reference to the data at url; True when nothing refers to it any more (the caller removes it)."""
    found = s.scalar(select(SharedDataRow.id).where(SharedDataRow.url_key == url_key(url), SharedDataRow.url == url))
    return True if found is None else _drop(s, found)


def _drop(s: Session, data_id: int) -> bool:
    s.execute(update(SharedDataRow).where(SharedDataRow.id == data_id).values(refs=SharedDataRow.refs - 1))
    gone = rowcount(s.execute(delete(SharedDataRow).where(SharedDataRow.id == data_id, SharedDataRow.refs <= 0)))
    return gone == 1


def is_shared(s: Session, url: str) -> bool:
    return s.scalar(select(SharedDataRow.id).where(SharedDataRow.url_key == url_key(url))) is not None


class SharedData:
    """The references that are not an image's location: uploads' pins, and what `glimpse store` reads."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            yield s

    def pin(self, image_id: str, claim: str, key: DataKey, project: str | None) -> str | None:
        """The URL of the store's data of that size and sha512, now held for the upload `claim` of image_id;
        None when the store holds no such data that `project` can see already (an image of its own, or a public
        or community one): an upload of data only other projects hold is written as usual."""
        with self._tx() as s:
            visible = or_(ImageRow.visibility.in_(("public", "community")), ImageRow.owner == project)
            seen = exists().where(
                LocationRow.url == SharedDataRow.url,
                LocationRow.status == "active",
                ImageRow.id == LocationRow.image_id,
                ImageRow.deleted == false(),
                visible,
            )
            bump = update(SharedDataRow).where(_twin(key), seen).values(refs=SharedDataRow.refs + 1)
            if rowcount(s.execute(bump)) != 1:
                return None
            twin = _twin(key)
            row = s.scalars(select(SharedDataRow).where(twin)).one()
            s.add(SharedDataPinRow(image_id=image_id, claim=claim, data_id=row.id, created_at=utcnow()))
            return row.url

    def unpin(self, image_id: str, claim: str | None = None) -> list[Location]:
        """Uploads that gave up let their pins go: the upload `claim`'s, or (claim None, after a sweep or a
        restart) every pin of image_id not held by its current upload. Returns the data nothing uses any more."""
        with self._tx() as s:
            query = select(SharedDataPinRow).where(SharedDataPinRow.image_id == image_id)
            if claim is not None:
                query = query.where(SharedDataPinRow.claim == claim)
            else:
                live = s.scalar(select(ImageRow.upload_claim).where(ImageRow.id == image_id, _uploading()))
                if live is not None:
                    query = query.where(SharedDataPinRow.claim != live)
            unused = []
            for pinned in s.scalars(query).all():
                s.delete(pinned)
                s.flush()
                row = s.get(SharedDataRow, pinned.data_id)
                if row is not None:
                    location = Location(url=row.url, metadata={"store": row.store})
                    if _drop(s, pinned.data_id):
                        unused.append(location)
            return unused

    def stale_pins(self) -> list[str]:
        """Images with pins no live upload holds (their upload's process died): for `glimpse store gc`."""
        with self._tx() as s:
            rows = s.execute(
                select(SharedDataPinRow.image_id)
                .join(ImageRow, ImageRow.id == SharedDataPinRow.image_id, isouter=True)
                .where(or_(ImageRow.id.is_(None), ~_uploading(), ImageRow.upload_claim != SharedDataPinRow.claim))
            )
            return sorted({r[0] for r in rows})

    def is_shared(self, url: str) -> bool:
        """Whether url is deduplicated data some image or upload still refers to."""
        with self._tx() as s:
            return is_shared(s, url)

    def usage(self) -> list[StoreUsage]:
        """Per store, over every copy whose data is still held (a deleted image's waiting for the scrubber too):
        logical bytes count each copy at its image's size, physical bytes each piece of data once."""
        with self._tx() as s:
            rows = s.execute(
                select(LocationRow.url, LocationRow.meta, ImageRow.size)
                .join(ImageRow, ImageRow.id == LocationRow.image_id)
                .where(LocationRow.status != "deleted", ImageRow.size.is_not(None))
            ).all()
        copies: dict[str, dict[str, list[int]]] = {}
        for url, meta, size in rows:
            store = str(json.loads(meta).get("store") or "-")
            copies.setdefault(store, {}).setdefault(url, []).append(int(size or 0))
        return [
            StoreUsage(
                store=store,
                logical=sum(sum(sizes) for sizes in held.values()),
                physical=sum(sizes[0] for sizes in held.values()),
                copies=sum(len(sizes) for sizes in held.values()),
                shared_copies=sum(len(sizes) for sizes in held.values() if len(sizes) > 1),
            )
            for store, held in sorted(copies.items())
        ]
