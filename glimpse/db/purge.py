"""`glimpse db purge`: rows of things deleted long ago, removed in small batches, as glance-manage db purge.

What goes: the properties, tags, members and locations of images deleted (status deleted, so scrubbed)
more than N days ago, but not a location whose data is still to remove (`deleting`, for `glimpse scrub`),
and tasks that expired more than N days ago. What stays: each deleted image's own row, the tombstone that
keeps its id from ever being used again (Glance's OSSN-0075). Each batch is its own short transaction, so
the service keeps running while it purges.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Select, Table, delete, select, true

from glimpse.db.models import ImageRow, LocationRow, MemberRow, PropertyRow, TagRow, TaskRow, table_of, utcnow
from glimpse.db.session import SessionFactory, rowcount

CHILDREN = (PropertyRow, TagRow, MemberRow, LocationRow)


def purge(sessions: SessionFactory, age_in_days: int, max_rows: int) -> dict[str, int]:
    """Rows removed per table; max_rows is the batch size (-1: everything in one transaction per table)."""
    cutoff = utcnow() - timedelta(days=age_in_days)
    gone = select(ImageRow.id).where(
        ImageRow.deleted == true(), ImageRow.status == "deleted", ImageRow.deleted_at < cutoff
    )
    removed: dict[str, int] = {}
    for child in CHILDREN:
        table = table_of(child)
        query = select(table.c.id).where(table.c.image_id.in_(gone))
        if child is LocationRow:  # a copy whose data a deletion could not remove stays, for `glimpse scrub`
            query = query.where(table.c.status == "deleted")
        removed[table.name] = _batches(sessions, table, query, max_rows)
    tasks = table_of(TaskRow)
    expired = select(tasks.c.id).where(tasks.c.expires_at < cutoff, tasks.c.status.in_(("success", "failure")))
    removed[tasks.name] = _batches(sessions, tasks, expired, max_rows)
    return removed


def _batches(sessions: SessionFactory, table: Table, query: Select[tuple[Any]], max_rows: int) -> int:
    """Delete the rows `query` selects, max_rows at a time, each batch in its own transaction. The ids are
    read first (MariaDB refuses LIMIT inside IN (subquery))."""
    total = 0
    while True:
        with sessions.begin() as s:
            ids = list(s.scalars(query.order_by(table.c.id).limit(None if max_rows < 0 else max_rows)))
            if not ids:
                return total
            total += rowcount(s.execute(delete(table).where(table.c.id.in_(ids))))
        if max_rows < 0:
            return total
