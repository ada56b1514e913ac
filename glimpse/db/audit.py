"""The audit log in the database, read by administrators, and the leases of cluster-wide jobs.

audit_hook.py writes the entries in the transactions of their changes; this module reads and purges them.
"""

from __future__ import annotations

import builtins
import json
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from glimpse.db.audit_hook import entry_row, still_held
from glimpse.db.audit_models import AuditRow, LeaseRow
from glimpse.db.models import utcnow
from glimpse.db.session import SessionFactory, rowcount
from glimpse.domain.audit_entries import AuditEntry, AuditQuery, LeaseFence
from glimpse.errors import BadRequest


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        created_at=row.created_at,
        request_id=row.request_id or "",
        user_id=row.user_id,
        project_id=row.project_id,
        roles=tuple(json.loads(row.roles)),
        policy_id=row.policy_id,
        action=row.action,
        target_type=row.target_type,
        target_id=row.target_id,
        target_project=row.target_project,
        changes=json.loads(row.changes),
    )


class AuditRecords:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def append(self, entry: AuditEntry) -> None:
        """An entry of its own transaction (what changes no row of the database, such as a purge of the log)."""
        with self._sessions.begin() as s:
            s.add(entry_row(entry, utcnow()))

    def list(self, q: AuditQuery) -> builtins.list[AuditEntry]:
        with self._sessions.begin() as s:
            conditions: list[ColumnElement[bool]] = []
            if q.target_id is not None:
                conditions.append(AuditRow.target_id == q.target_id)
            if q.project_id is not None:
                conditions.append(or_(AuditRow.project_id == q.project_id, AuditRow.target_project == q.project_id))
            if q.user_id is not None:
                conditions.append(AuditRow.user_id == q.user_id)
            if q.action is not None:
                conditions.append(AuditRow.action == q.action)
            if q.since is not None:
                conditions.append(AuditRow.created_at >= q.since)
            if q.until is not None:
                conditions.append(AuditRow.created_at < q.until)
            if q.marker is not None:
                if s.get(AuditRow, q.marker) is None:
                    raise BadRequest(f"No audit record found with ID {q.marker}")
                conditions.append(AuditRow.id < q.marker if q.newest_first else AuditRow.id > q.marker)
            order = AuditRow.id.desc() if q.newest_first else AuditRow.id.asc()
            rows = s.scalars(select(AuditRow).where(*conditions).order_by(order).limit(q.limit))
            return [_entry(row) for row in rows]

    def purge(self, older_than_days: int, batch: int = 1000) -> int:
        """Remove the rows older than that many days, a batch per transaction; the number removed."""
        cutoff = utcnow() - timedelta(days=older_than_days)
        total = 0
        while True:
            with self._sessions.begin() as s:
                ids = list(s.scalars(select(AuditRow.id).where(AuditRow.created_at < cutoff).limit(batch)))
                if not ids:
                    return total
                total += rowcount(s.execute(delete(AuditRow).where(AuditRow.id.in_(ids))))


class Leases:
    """Leases in the database: one holder at a time, taken over only once expired, each taking fenced."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def acquire(self, name: str, holder: str, ttl: float) -> LeaseFence | None:
        """Take (or renew) the lease for ttl seconds; None while another holder's is unexpired."""
        try:
            return self._acquire(name, holder, ttl)
        except IntegrityError:  # another node created the lease at the same moment: theirs
            return None

    def _acquire(self, name: str, holder: str, ttl: float) -> LeaseFence | None:
        now = utcnow()
        expires = now + timedelta(seconds=ttl)
        with self._sessions.begin() as s:
            row = s.get(LeaseRow, name, with_for_update=True)
            if row is None:
                s.add(LeaseRow(name=name, holder=holder, generation=1, expires_at=expires))
                return LeaseFence(name, holder, 1)
            if row.holder == holder and row.expires_at > now:
                row.expires_at = expires
                return LeaseFence(name, holder, row.generation)
            generation = row.generation + 1
            taken = s.execute(
                update(LeaseRow)
                .where(LeaseRow.name == name, LeaseRow.generation == row.generation, LeaseRow.expires_at <= now)
                .values(holder=holder, generation=generation, expires_at=expires)
            )
            if rowcount(taken) != 1:
                return None
            return LeaseFence(name, holder, generation)

    def renew(self, fence: LeaseFence, ttl: float) -> bool:
        with self._sessions.begin() as s:
            result = s.execute(
                update(LeaseRow)
                .where(*still_held(fence), LeaseRow.expires_at > utcnow())
                .values(expires_at=utcnow() + timedelta(seconds=ttl))
            )
            return rowcount(result) == 1

    def release(self, fence: LeaseFence) -> None:
        """Let the next node take it at once (expired now), only if it is still this holder's."""
        with self._sessions.begin() as s:
            s.execute(update(LeaseRow).where(*still_held(fence)).values(expires_at=utcnow()))
