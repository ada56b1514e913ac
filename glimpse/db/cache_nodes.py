"""Which nodes cache which image, in the shared database: Glance's node_reference and cached_images tables, kept
as its centralized_db cache driver keeps them.

A node is its worker_self_reference_url (one node_reference row, made on first use; every process of the node
shares it). Each row of cached_images says that node holds a verified copy; the node cache adds and removes its
own rows as copies come and go, and sync() repairs what a crash or a database outage left behind.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from glimpse.db.models import CachedImageRow, NodeReferenceRow, table_of, utcnow
from glimpse.db.session import SessionFactory, rowcount
from glimpse.domain.entities import CachedImage


def _naive_utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


class CacheNodeRecords:
    def __init__(self, sessions: SessionFactory, node_url: str | None) -> None:
        """node_url: this node's worker_self_reference_url; None records nothing (the node can still list)."""
        self._sessions = sessions
        self.node_url = node_url
        self._node_id: int | None = None

    def _node(self) -> int | None:
        if self.node_url is None:
            return None
        if self._node_id is None:
            self._node_id = self._find() or self._create()
        return self._node_id

    def _find(self) -> int | None:
        with self._sessions.begin() as s:
            found = s.scalar(
                select(NodeReferenceRow.node_reference_id).where(NodeReferenceRow.node_reference_url == self.node_url)
            )
        return int(found) if found is not None else None

    def _create(self) -> int:
        try:
            with self._sessions.begin() as s:
                row = NodeReferenceRow(node_reference_url=self.node_url)
                s.add(row)
                s.flush()
                return int(row.node_reference_id)
        except IntegrityError:  # another process of the node (or a node misconfigured with our URL) was first
            found = self._find()
            if found is None:
                raise
            return found

    def add(self, image_id: str, size: int, checksum: str | None) -> None:
        node = self._node()
        if node is None:
            return
        now = utcnow()
        values = {"size": size, "checksum": checksum, "hits": 0, "last_accessed": now, "last_modified": now}
        mine = (CachedImageRow.image_id == image_id) & (CachedImageRow.node_reference_id == node)
        try:
            with self._sessions.begin() as s:
                done = s.execute(update(CachedImageRow).where(mine).values(**values))
                if rowcount(done) == 0:
                    s.execute(
                        table_of(CachedImageRow).insert().values(image_id=image_id, node_reference_id=node, **values)
                    )
        except IntegrityError:
            pass  # recorded meanwhile by another process of this node: the same copy

    def hit(self, image_id: str) -> None:
        node = self._node()
        if node is None:
            return
        with self._sessions.begin() as s:
            s.execute(
                update(CachedImageRow)
                .where(CachedImageRow.image_id == image_id, CachedImageRow.node_reference_id == node)
                .values(hits=CachedImageRow.hits + 1, last_accessed=utcnow())
            )

    def remove(self, image_id: str) -> None:
        node = self._node()
        if node is None:
            return
        with self._sessions.begin() as s:
            s.execute(
                delete(CachedImageRow).where(
                    CachedImageRow.image_id == image_id, CachedImageRow.node_reference_id == node
                )
            )

    def sync(self, cached: list[CachedImage]) -> None:
        node = self._node()
        if node is None:
            return
        wanted = {entry.image_id: entry for entry in cached}
        with self._sessions.begin() as s:
            recorded = set(s.scalars(select(CachedImageRow.image_id).where(CachedImageRow.node_reference_id == node)))
            gone = recorded - wanted.keys()
            if gone:
                s.execute(
                    delete(CachedImageRow).where(
                        CachedImageRow.node_reference_id == node, CachedImageRow.image_id.in_(gone)
                    )
                )
            missing = [wanted[image_id] for image_id in sorted(wanted.keys() - recorded)]
            if missing:
                s.execute(
                    table_of(CachedImageRow).insert(),
                    [
                        {
                            "image_id": entry.image_id,
                            "node_reference_id": node,
                            "size": entry.size,
                            "hits": entry.hits,
                            "checksum": None,
                            "last_accessed": _naive_utc(entry.last_accessed),
                            "last_modified": _naive_utc(entry.last_modified),
                        }
                        for entry in missing
                    ],
                )

    def nodes(self, image_id: str) -> list[str]:
        with self._sessions.begin() as s:
            urls = s.scalars(
                select(NodeReferenceRow.node_reference_url)
                .join(CachedImageRow, CachedImageRow.node_reference_id == NodeReferenceRow.node_reference_id)
                .where(CachedImageRow.image_id == image_id)
                .order_by(NodeReferenceRow.node_reference_url)
            )
            return list(urls)
