"""Audit entries written in the transaction of their change.

`install` hooks every session of a session factory: when a transaction that wrote something commits while a use
case has announced audit entries (glimpse.domain.audit_entries.recording), the entries are inserted first, in
that same transaction, and an announced lease fence is checked there too; a failure rolls the change back.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, event, insert, update
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from glimpse.db.audit_models import AuditRow, LeaseRow
from glimpse.db.models import table_of, utcnow
from glimpse.domain.audit_entries import AuditEntry, LeaseFence, take_pending
from glimpse.errors import ClaimLost

WROTE = "glimpse_wrote"
AUDIT = table_of(AuditRow)


def install(maker: sessionmaker[Session]) -> None:
    event.listen(maker, "do_orm_execute", _note_write)
    event.listen(maker, "before_commit", _write_pending)
    event.listen(maker, "after_rollback", _clear_note)


def _clear_note(session: Session) -> None:
    """A rolled back transaction wrote nothing the next one should answer for."""
    session.info.pop(WROTE, None)


def _note_write(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info[WROTE] = True


def _write_pending(session: Session) -> None:
    wrote = session.info.pop(WROTE, False) or bool(session.new or session.dirty or session.deleted)
    if not wrote:
        return
    pending = take_pending()
    if pending is None:
        return
    if pending.fence is not None:
        hold_lease(session, pending.fence)
    now = utcnow()
    # A Core INSERT on the transaction's connection: the ORM's unit of work for these rows cost a create a fifth
    # of its time, and a connection's statements are not the session's writes (_note_write does not see them).
    session.connection().execute(insert(AUDIT), [entry_values(entry, now) for entry in pending.entries])


def still_held(fence: LeaseFence) -> tuple[ColumnElement[bool], ...]:
    """The lease row as the fence knows it: this holder, this generation."""
    return LeaseRow.name == fence.name, LeaseRow.holder == fence.holder, LeaseRow.generation == fence.generation


def hold_lease(s: Session, fence: LeaseFence) -> None:
    """In the caller's transaction: the lease is still this holder's, unexpired, and stays locked until commit."""
    result = s.execute(
        update(LeaseRow)
        .where(*still_held(fence), LeaseRow.expires_at > utcnow())
        .values(generation=LeaseRow.generation)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        raise ClaimLost(f"The {fence.name} lease of {fence.holder} is lost; this node stops acting.")


def entry_row(entry: AuditEntry, now: datetime) -> AuditRow:
    return AuditRow(**entry_values(entry, now))


def entry_values(entry: AuditEntry, now: datetime) -> dict[str, Any]:
    return dict(
        created_at=now,
        request_id=entry.request_id or None,
        user_id=entry.user_id,
        project_id=entry.project_id,
        roles=json.dumps(sorted(entry.roles)),
        policy_id=entry.policy_id,
        action=entry.action,
        target_type=entry.target_type,
        target_id=entry.target_id,
        target_project=entry.target_project,
        changes=json.dumps(entry.changes, sort_keys=True, default=str),
    )
