"""The webhooks' tables (migration 0011): the receivers, and the outbox of events waiting for them."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from glimpse.db.models import Base, RowId, Timestamp


class WebhookRow(Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str | None] = mapped_column(String(255), index=True)  # None: global (an admin's)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(255))  # the HMAC key; never shown back
    events: Mapped[str] = mapped_column(Text)  # JSON list of event types or groups; [] for every one
    description: Mapped[str] = mapped_column(String(255), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    updated_at: Mapped[datetime] = mapped_column(Timestamp)


class OutboxRow(Base):
    """One event for one webhook: its CloudEvents document, its delivery state and the sender's lease."""

    __tablename__ = "webhook_outbox"

    id: Mapped[int] = mapped_column(RowId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(36))
    event_type: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, sending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Timestamp)
    # The fence: a fresh token at every claim; only the holder of the current token may record the outcome.
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_until: Mapped[datetime | None] = mapped_column(Timestamp)
    leased_by: Mapped[str | None] = mapped_column(String(255))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_webhook_outbox_webhook_id"),
        Index("ix_webhook_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_outbox_webhook_id_subject_status", "webhook_id", "subject", "status"),
        Index("ix_webhook_outbox_webhook_id_id", "webhook_id", "id"),
        Index("ix_webhook_outbox_finished_at", "finished_at"),
    )
