"""The writes that bring image data in and publish it: uploads and stagings under a claim token,
activation and extra locations under a task's fence. Mixed into ImageRepository (db/repositories.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, exists, false, func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from glimpse.db.models import (
    NEXT_REVISION,
    ImageRow,
    LocationRow,
    PropertyRow,
    ReservationRow,
    ResumableUploadRow,
    table_of,
    utcnow,
)
from glimpse.db.quotas import UPLOADING, count_images, lock_project
from glimpse.db.session import rowcount, transient
from glimpse.db.shared_data import link
from glimpse.db.tasks import hold_claim
from glimpse.domain.entities import DataKey, Fence, Location
from glimpse.errors import Conflict, TooLarge

RETRIES = 5
_T = TypeVar("_T")


class ImageDataWrites:
    def _tx(self) -> AbstractContextManager[Session]:
        raise NotImplementedError()  # pragma: no cover

    def _retrying(self, work: Callable[[Session], _T]) -> _T:
        """Run `work` in a transaction, again when the database gave up on it (MariaDB resolves the deadlocks of
        two nodes inserting the same shared data by rolling one transaction back; PostgreSQL likewise)."""
        for attempt in range(1, RETRIES + 1):
            try:
                with self._tx() as s:
                    return work(s)
            except DBAPIError as exc:
                if attempt == RETRIES or not transient(exc):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def begin_upload(
        self, image_id: str, owner: str | None, node: str, max_uploading: int | None, to_status: str = "saving"
    ) -> str:
        """queued -> saving (or uploading, for staging) for this node; with max_uploading, only while the
        project has fewer uploads in progress. Returns the upload's claim token: only the holder of the
        current token may publish, beat or give the image back."""
        claim = str(uuid.uuid4())
        with self._tx() as s:
            if max_uploading is not None and owner is not None:
                lock_project(s, owner)
                if count_images(s, owner, UPLOADING) >= max_uploading:
                    raise TooLarge(f"Maximum number of uploads in progress exceeded: the limit is {max_uploading}.")
            result = s.execute(
                update(ImageRow)
                .where(ImageRow.id == image_id, ImageRow.status == "queued", ImageRow.deleted == false())
                .values(
                    status=to_status,
                    updated_at=utcnow(),
                    revision=NEXT_REVISION,
                    upload_node=node,
                    upload_heartbeat_at=utcnow(),
                    upload_claim=claim,
                )
            )
            if rowcount(result) != 1:
                raise Conflict(f"Image status transition from queued to {to_status} is not allowed")
        return claim

    def staged(self, image_id: str, claim: str, url: str) -> None:
        """The staging under `claim` completed: record where its data waits; Conflict when the image was
        deleted or given back meanwhile (the caller then removes the staged file)."""
        with self._tx() as s:
            result = s.execute(
                update(ImageRow)
                .where(
                    ImageRow.id == image_id,
                    ImageRow.status == "uploading",
                    ImageRow.upload_claim == claim,
                    ImageRow.deleted == false(),
                )
                .values(upload_node=None, upload_heartbeat_at=None, updated_at=utcnow())
            )
            if rowcount(result) != 1:
                raise Conflict(f"Image {image_id} was deleted or reset while it was being staged.")
            s.execute(
                table_of(PropertyRow)
                .delete()
                .where(PropertyRow.image_id == image_id, PropertyRow.name == "os_glance_stage_url")
            )
            s.add(PropertyRow(image_id=image_id, name="os_glance_stage_url", value=url))

    def upload_heartbeat(self, image_id: str, claim: str) -> bool:
        """Still the image's upload? False once it was deleted, swept or taken by another upload."""
        with self._tx() as s:
            result = s.execute(
                update(ImageRow)
                .where(
                    ImageRow.id == image_id,
                    ImageRow.upload_claim == claim,
                    ImageRow.deleted == false(),
                    ImageRow.status.in_(("saving", "uploading")),
                )
                .values(upload_heartbeat_at=utcnow())
            )
            return rowcount(result) == 1

    def statuses(self, image_ids: Sequence[str]) -> dict[str, str]:
        """Status of each image still there (deleted images are left out)."""
        with self._tx() as s:
            rows = s.execute(
                select(ImageRow.id, ImageRow.status).where(ImageRow.id.in_(image_ids), ImageRow.deleted == false())
            )
            return {r[0]: r[1] for r in rows}

    def abandoned_uploads(self, older_than: timedelta) -> list[tuple[str, str, str]]:
        """(image id, status, node) of uploads and stagings whose writer stopped beating."""
        cutoff = utcnow() - older_than
        with self._tx() as s:
            rows = s.execute(
                select(ImageRow.id, ImageRow.status, ImageRow.upload_node).where(
                    ImageRow.status.in_(("saving", "uploading")),
                    ImageRow.deleted == false(),
                    ImageRow.upload_heartbeat_at < cutoff,
                    ~_resumable(),
                )
            )
            return [(r[0], r[1], r[2] or "") for r in rows]

    def set_internal_properties(
        self,
        image_id: str,
        values: dict[str, str],
        remove: tuple[str, ...] = (),
        fence: Fence | None = None,
        expect: Mapping[str, str | None] | None = None,
    ) -> None:
        """Server-kept properties (os_glance_*), changed without touching the user's revision. With `expect`, only
        while those properties still have those values (None: absent); Conflict otherwise."""
        with self._tx() as s:
            if fence is not None:
                hold_claim(s, fence)
            if expect:
                _check_properties(s, image_id, expect)
            _set_properties(s, image_id, values, remove)

    def ids_in_status_on(self, status: str, node: str) -> list[str]:
        with self._tx() as s:
            query = select(ImageRow.id).where(ImageRow.status == status, ImageRow.upload_node == node, ~_resumable())
            return list(s.scalars(query))

    def activate(
        self,
        image_id: str,
        from_status: str,
        location: Location,
        *,
        extra: Sequence[Location] = (),
        fence: Fence | None = None,
        if_claim: str | None = None,
        properties: Mapping[str, str] | None = None,
        remove_properties: tuple[str, ...] = (),
        shared: bool = False,
        **values: Any,
    ) -> list[Location]:
        """Publish data: status, checksums and locations in one compare-and-swap, which also checks the
        task's claim (fence) or the upload's claim token (if_claim) when given. ClaimLost/Conflict otherwise.
        Server-kept properties change in the same commit: nobody sees the image active without them.
        shared: each copy links to a twin its store holds already (db/shared_data.py); the copies made redundant
        are returned, for the caller to remove once this is committed."""

        def work(s: Session) -> list[Location]:
            if fence is not None:
                hold_claim(s, fence)
            conditions = [ImageRow.id == image_id, ImageRow.status == from_status, ImageRow.deleted == false()]
            if if_claim is not None:
                conditions.append(ImageRow.upload_claim == if_claim)
            result = s.execute(
                update(ImageRow)
                .where(*conditions)
                .values(
                    status="active",
                    updated_at=utcnow(),
                    revision=NEXT_REVISION,
                    upload_node=None,
                    upload_claim=None,
                    **values,
                )
            )
            if rowcount(result) != 1:
                raise Conflict(f"Image {image_id} is no longer {from_status}.")
            redundant = []
            for place in (location, *extra):
                url = _linked(s, image_id, place, values.get("size"), values.get("os_hash_algo"),
                              values.get("os_hash_value"), shared, if_claim)  # fmt: skip
                if url != place.url:
                    redundant.append(place)
                s.add(LocationRow(image_id=image_id, url=url, meta=json.dumps(place.metadata), created_at=utcnow()))
            if properties or remove_properties:
                _set_properties(s, image_id, properties or {}, remove_properties)
            # The image's size now counts for its project; the upload's reservation goes in the same commit.
            s.execute(table_of(ReservationRow).delete().where(ReservationRow.image_id == image_id))
            return redundant

        return self._retrying(work)

    def add_location(
        self,
        image_id: str,
        location: Location,
        *,
        size: int | None,
        checksum: str | None,
        fence: Fence | None = None,
        virtual_size: int | None = None,
        shared: bool = False,
    ) -> str:
        """Record one more copy of the data, only while the image still holds that very data (a compare-and-
        swap on status, size and checksum, and on the task's claim with a fence); Conflict when it was
        deleted or its data changed meanwhile. The copy now counts as stored: its reservation shrinks.
        Returns the URL recorded: with `shared`, a twin's the store holds already (the caller removes its copy)."""

        def work(s: Session) -> str:
            if fence is not None:
                hold_claim(s, fence)
            result = s.execute(
                update(ImageRow)
                .where(
                    ImageRow.id == image_id,
                    ImageRow.deleted == false(),
                    ImageRow.status.in_(("active", "deactivated")),
                    ImageRow.size == size,
                    ImageRow.checksum == checksum,
                )
                # The inspected copy fills a virtual_size the image lacks (data from before it was set for raw).
                .values(updated_at=utcnow(), virtual_size=func.coalesce(ImageRow.virtual_size, virtual_size))
            )
            if rowcount(result) != 1:
                raise Conflict(f"Image {image_id} was deleted or its data changed; the copy is not recorded.")
            known = s.scalar(
                select(LocationRow.status).where(
                    LocationRow.image_id == image_id, LocationRow.url == location.url, LocationRow.status != "deleted"
                )
            )
            if known == "active":
                return location.url
            if known is not None:  # data waiting for the scrubber there: it would remove this copy's bytes too
                raise Conflict(f"Image {image_id} has a copy at that location still being deleted; not recorded.")
            image = s.get(ImageRow, image_id)
            assert image is not None
            url = _linked(s, image_id, location, size, image.os_hash_algo, image.os_hash_value, shared)
            s.add(LocationRow(image_id=image_id, url=url, meta=json.dumps(location.metadata), created_at=utcnow()))
            held = s.get(ReservationRow, image_id)
            if held is not None:
                held.bytes = max(0, held.bytes - (size or 0))
            return url

        return self._retrying(work)


def _linked(
    s: Session,
    image_id: str,
    place: Location,
    size: Any,
    hash_algo: Any,
    hash_value: Any,
    shared: bool,
    claim: str | None = None,
) -> str:
    """The URL a copy is recorded under: a twin's when deduplication links it, else its own."""
    store = place.metadata.get("store")
    if not shared or not store or hash_algo != "sha512" or not hash_value or size is None:
        return place.url
    return link(s, DataKey(str(store), int(size), str(hash_value)), place.url, image_id, claim)


def _resumable() -> ColumnElement[bool]:
    """The image waits for a tus upload, which beats only while a PATCH flows: its expiry sweeps it, not the
    sweep of uploads whose process died."""
    return exists().where(ResumableUploadRow.image_id == ImageRow.id)


def _check_properties(s: Session, image_id: str, expect: Mapping[str, str | None]) -> None:
    """Conflict unless the properties have the expected values. Locking reads, the image's row first: two requests
    checking the same image on PostgreSQL or MariaDB take turns, and the second sees what the first committed."""
    s.execute(select(ImageRow.id).where(ImageRow.id == image_id).with_for_update())
    found = s.execute(
        select(PropertyRow.name, PropertyRow.value)
        .where(PropertyRow.image_id == image_id, PropertyRow.name.in_(sorted(expect)))
        .with_for_update()
    )
    current: dict[str, str | None] = {name: value for name, value in found}
    if any(current.get(name) != value for name, value in expect.items()):
        raise Conflict(f"Image {image_id} changed meanwhile: another request got there first.")


def _set_properties(s: Session, image_id: str, values: Mapping[str, str], remove: tuple[str, ...]) -> None:
    rows = {p.name: p for p in s.scalars(select(PropertyRow).where(PropertyRow.image_id == image_id))}
    for name in remove:
        if name in rows:
            s.delete(rows[name])
    for name, value in values.items():
        if name in rows:
            rows[name].value = value
        else:
            s.add(PropertyRow(image_id=image_id, name=name, value=value))
