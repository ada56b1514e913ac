"""The audit log, the retention policies and the leases of jobs only one node may run at a time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from glimpse.db.models import Base, RowId, Timestamp


class AuditRow(Base):
    """One change; rows are only ever inserted (and purged past the retention age)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    request_id: Mapped[str | None] = mapped_column(String(255))
    user_id: Mapped[str | None] = mapped_column(String(255))
    project_id: Mapped[str | None] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    policy_id: Mapped[str | None] = mapped_column(String(36))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(255))
    target_project: Mapped[str | None] = mapped_column(String(255))
    changes: Mapped[str] = mapped_column(Text, default="{}")  # JSON {field: [before, after]}

    __table_args__ = (
        Index("ix_audit_log_target_id", "target_id"),
        Index("ix_audit_log_created_at", "created_at"),
        Index("ix_audit_log_user_id", "user_id"),
        Index("ix_audit_log_project_id", "project_id"),
        Index("ix_audit_log_target_project", "target_project"),
    )


class RetentionPolicyRow(Base):
    __tablename__ = "retention_policies"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(255))
    os_family: Mapped[str | None] = mapped_column(String(255))
    keep_newest: Mapped[int | None] = mapped_column(Integer)
    max_age_days: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class LeaseRow(Base):
    """Who runs a cluster-wide job (the retention run) until expires_at; generation grows at every taking."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    generation: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)
