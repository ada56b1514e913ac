"""Dashboard sessions in the shared database (domain/session_records.py:SessionStore)."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import Index, String, Text, delete, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from glimpse.db.models import Base, Timestamp, utcnow
from glimpse.db.session import SessionFactory, rowcount
from glimpse.domain.session_records import StoredSession


class DashboardSessionRow(Base):
    __tablename__ = "dashboard_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str | None] = mapped_column(String(255))
    user_name: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    project_name: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[str] = mapped_column(Text)  # JSON
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (
        Index("ix_dashboard_sessions_expires_at", "expires_at"),
        Index("ix_dashboard_sessions_user_id", "user_id"),
    )


def _record(row: DashboardSessionRow) -> StoredSession:
    return StoredSession(
        key=row.id,
        data=json.loads(row.data),
        expires_at=row.expires_at,
        created_at=row.created_at,
        user_id=row.user_id,
        user_name=row.user_name,
        project_id=row.project_id,
        project_name=row.project_name,
    )


class DashboardSessions:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    def get(self, key: str) -> StoredSession | None:
        with self._sessions.begin() as s:
            row = s.get(DashboardSessionRow, key)
            if row is None:
                return None
            if row.expires_at <= utcnow():
                s.delete(row)
                return None
            return _record(row)

    def put(self, session: StoredSession) -> None:
        with self._sessions.begin() as s:
            row = s.get(DashboardSessionRow, session.key)
            if row is None:
                row = DashboardSessionRow(id=session.key, created_at=session.created_at)
                s.add(row)
            row.user_id = session.user_id
            row.user_name = session.user_name
            row.project_id = session.project_id
            row.project_name = session.project_name
            row.data = json.dumps(session.data)
            row.expires_at = session.expires_at

    def delete(self, key: str) -> bool:
        with self._sessions.begin() as s:
            return rowcount(s.execute(delete(DashboardSessionRow).where(DashboardSessionRow.id == key))) > 0

    def delete_user(self, user: str) -> int:
        match = or_(DashboardSessionRow.user_id == user, DashboardSessionRow.user_name == user)
        with self._sessions.begin() as s:
            return rowcount(s.execute(delete(DashboardSessionRow).where(match)))

    def active(self) -> list[StoredSession]:
        with self._sessions.begin() as s:
            rows = s.scalars(
                select(DashboardSessionRow)
                .where(DashboardSessionRow.expires_at > utcnow(), DashboardSessionRow.user_name.is_not(None))
                .order_by(DashboardSessionRow.created_at)
            )
            return [_record(r) for r in rows]

    def sweep(self) -> int:
        with self._sessions.begin() as s:
            return rowcount(s.execute(delete(DashboardSessionRow).where(DashboardSessionRow.expires_at <= utcnow())))
