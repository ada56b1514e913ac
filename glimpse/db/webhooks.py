"""Webhooks and their outbox in the database.

Claiming is a compare-and-swap on each row (its status and lease token as read), so two senders never hold one
row at once on any database; on PostgreSQL and MariaDB the candidates are also read FOR UPDATE SKIP LOCKED, so
concurrent senders pick different rows instead of racing for the same ones.
"""

from __future__ import annotations

import builtins
import json
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from glimpse.db.models import ImageRow, table_of, utcnow
from glimpse.db.session import SessionFactory, engine_of, rowcount
from glimpse.db.webhook_models import OutboxRow, WebhookRow
from glimpse.domain.webhook_entities import (
    DELIVERED,
    FAILED,
    PENDING,
    SENDING,
    Claim,
    Delivery,
    OutgoingEvent,
    Webhook,
    wants_event,
)
from glimpse.errors import NotFound

UNFINISHED = (PENDING, SENDING)


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook(
        id=row.id, project_id=row.project_id, url=row.url, secret=row.secret, events=tuple(json.loads(row.events)),
        description=row.description, enabled=row.enabled, created_at=row.created_at, updated_at=row.updated_at,
    )  # fmt: skip


def _delivery(row: OutboxRow) -> Delivery:
    return Delivery(
        webhook_id=row.webhook_id, event_id=row.event_id, event_type=row.event_type, subject=row.subject,
        status=row.status, attempts=row.attempts, next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code, last_error=row.last_error, created_at=row.created_at,
        finished_at=row.finished_at,
    )  # fmt: skip


def _pending(webhook_id: str, event: OutgoingEvent, now: datetime) -> OutboxRow:
    return OutboxRow(
        webhook_id=webhook_id, event_id=event.event_id, event_type=event.event_type, subject=event.subject[:255],
        body=event.body, status=PENDING, attempts=0, next_attempt_at=now, created_at=now,
    )  # fmt: skip


_HOOKS, _IMAGES = table_of(WebhookRow).c, table_of(ImageRow).c
# Built once (every create, update and delete asks it): an enabled webhook of every project, of one of the owners,
# or of the image's owner (no image, no owner: NULL matches no project).
ANY_RECEIVER = (
    select(_HOOKS.id)
    .where(
        _HOOKS.enabled.is_(True),
        or_(
            _HOOKS.project_id.is_(None),
            _HOOKS.project_id.in_(bindparam("owners", expanding=True)),
            _HOOKS.project_id == select(_IMAGES.owner).where(_IMAGES.id == bindparam("image_id")).scalar_subquery(),
        ),
    )
    .limit(1)
)


class WebhookStore:
    """The WebhookRepository and Outbox ports over one database."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._engine = engine_of(sessions)

    # --- webhooks ---------------------------------------------------------------------------
    def add(self, webhook: Webhook) -> Webhook:
        with self._sessions.begin() as s:
            s.add(WebhookRow(
                id=webhook.id, project_id=webhook.project_id, url=webhook.url, secret=webhook.secret,
                events=json.dumps(list(webhook.events)), description=webhook.description, enabled=webhook.enabled,
                created_at=webhook.created_at, updated_at=webhook.updated_at,
            ))  # fmt: skip
        return webhook

    def get(self, webhook_id: str) -> Webhook:
        with self._sessions.begin() as s:
            row = s.get(WebhookRow, webhook_id)
            if row is None:
                raise NotFound(f"No webhook found with ID {webhook_id}")
            return _webhook(row)

    def list(self, project_id: str | None, every: bool) -> builtins.list[Webhook]:
        with self._sessions.begin() as s:
            stmt = select(WebhookRow).order_by(WebhookRow.created_at, WebhookRow.id)
            if not every:
                stmt = stmt.where(WebhookRow.project_id == project_id)
            return [_webhook(r) for r in s.scalars(stmt)]

    def count(self, project_id: str | None) -> int:
        with self._sessions.begin() as s:
            owner = WebhookRow.project_id.is_(None) if project_id is None else WebhookRow.project_id == project_id
            return s.scalar(select(func.count()).select_from(WebhookRow).where(owner)) or 0

    def save(self, webhook: Webhook) -> Webhook:
        with self._sessions.begin() as s:
            result = s.execute(
                update(WebhookRow).where(WebhookRow.id == webhook.id).values(
                    url=webhook.url, secret=webhook.secret, events=json.dumps(list(webhook.events)),
                    description=webhook.description, enabled=webhook.enabled, updated_at=webhook.updated_at,
                )
            )  # fmt: skip
            if rowcount(result) != 1:
                raise NotFound(f"No webhook found with ID {webhook.id}")
        return webhook

    def delete(self, webhook_id: str) -> None:
        with self._sessions.begin() as s:
            s.execute(delete(OutboxRow).where(OutboxRow.webhook_id == webhook_id))
            if rowcount(s.execute(delete(WebhookRow).where(WebhookRow.id == webhook_id))) != 1:
                raise NotFound(f"No webhook found with ID {webhook_id}")

    # --- the outbox ---------------------------------------------------------------------------
    def enqueue(self, event: OutgoingEvent, projects: Iterable[str], image_id: str | None) -> int:
        owners = {p for p in projects if p}
        if not self._any_receiver(owners, image_id):
            return 0  # the common case, answered by one read: no write transaction, nothing to commit
        with self._sessions.begin() as s:
            if image_id:
                owner = s.scalar(select(ImageRow.owner).where(ImageRow.id == image_id))
                if owner:
                    owners.add(owner)
            receivers = s.scalars(
                select(WebhookRow).where(
                    WebhookRow.enabled.is_(True),
                    or_(WebhookRow.project_id.is_(None), WebhookRow.project_id.in_(sorted(owners))),
                )
            )
            now = utcnow()
            rows = [
                _pending(w.id, event, now) for w in receivers if wants_event(json.loads(w.events), event.event_type)
            ]
            s.add_all(rows)
            return len(rows)

    def _any_receiver(self, owners: set[str], image_id: str | None) -> bool:
        """Whether an enabled webhook may want an event of these projects or of the image's owner (its events
        are checked in enqueue's transaction); a webhook added after this read is as if added after the event."""
        with self._engine.connect() as conn:
            found = conn.execute(ANY_RECEIVER, {"owners": sorted(owners), "image_id": image_id}).first()
        return found is not None

    def enqueue_for(self, webhook_id: str, event: OutgoingEvent) -> None:
        with self._sessions.begin() as s:
            s.add(_pending(webhook_id, event, utcnow()))

    def deliveries(self, webhook_id: str, limit: int) -> builtins.list[Delivery]:
        with self._sessions.begin() as s:
            stmt = select(OutboxRow).where(OutboxRow.webhook_id == webhook_id).order_by(OutboxRow.id.desc())
            return [_delivery(r) for r in s.scalars(stmt.limit(limit))]

    def claim(self, node: str, limit: int, lease_seconds: float) -> builtins.list[Claim]:
        now = utcnow()
        earlier = aliased(OutboxRow)
        due = or_(
            and_(OutboxRow.status == PENDING, OutboxRow.next_attempt_at <= now),
            and_(OutboxRow.status == SENDING, OutboxRow.lease_until < now),
        )
        # Per webhook and subject (an image), one event at a time and in order: an image's update never
        # overtakes its create at the receiver, retries included.
        blocked = exists().where(
            earlier.webhook_id == OutboxRow.webhook_id,
            earlier.subject == OutboxRow.subject,
            earlier.id < OutboxRow.id,
            earlier.status.in_(UNFINISHED),
        )
        # A disabled webhook keeps its events until it is enabled again (or deleted with them).
        paused = ~OutboxRow.webhook_id.in_(select(WebhookRow.id).where(WebhookRow.enabled.is_(True)))
        stmt = (
            select(OutboxRow.id, OutboxRow.lease_token)
            .where(due, ~blocked, ~paused)
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        claims: builtins.list[Claim] = []
        with self._sessions.begin() as s:
            if s.get_bind().dialect.name != "sqlite":
                stmt = stmt.with_for_update(skip_locked=True)
            candidates = s.execute(stmt).all()
            until = now + timedelta(seconds=lease_seconds)
            for row_id, token in candidates:
                fresh = str(uuid.uuid4())
                held = OutboxRow.lease_token.is_(None) if token is None else OutboxRow.lease_token == token
                swapped = s.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id == row_id, held, due)
                    .values(status=SENDING, lease_token=fresh, lease_until=until, leased_by=node[:255],
                            attempts=OutboxRow.attempts + 1)
                )  # fmt: skip
                if rowcount(swapped) == 1:
                    claims.append(self._claim(s, row_id, fresh))
        return claims

    @staticmethod
    def _claim(s: Session, row_id: int, token: str) -> Claim:
        row, hook = s.execute(
            select(OutboxRow, WebhookRow).join(WebhookRow, WebhookRow.id == OutboxRow.webhook_id)
            .where(OutboxRow.id == row_id)
        ).one()  # fmt: skip
        return Claim(row.id, token, hook.id, hook.url, hook.secret, row.event_id, row.body, row.attempts)

    def _finish(self, claim: Claim, **values: object) -> bool:
        with self._sessions.begin() as s:
            result = s.execute(
                update(OutboxRow)
                .where(OutboxRow.id == claim.row_id, OutboxRow.lease_token == claim.token, OutboxRow.status == SENDING)
                .values(lease_token=None, lease_until=None, **values)
            )
            return rowcount(result) == 1

    def delivered(self, claim: Claim, status_code: int) -> bool:
        now = utcnow()
        return self._finish(claim, status=DELIVERED, last_status_code=status_code, last_error=None, finished_at=now)

    def retry(self, claim: Claim, status_code: int | None, error: str, at: datetime | None) -> bool:
        if at is None:
            return self._finish(
                claim, status=FAILED, last_status_code=status_code, last_error=error[:1024], finished_at=utcnow()
            )
        return self._finish(
            claim, status=PENDING, last_status_code=status_code, last_error=error[:1024], next_attempt_at=at
        )

    def purge(self, finished_before: datetime, limit: int) -> int:
        with self._sessions.begin() as s:
            ids = s.scalars(
                select(OutboxRow.id)
                .where(OutboxRow.status.in_((DELIVERED, FAILED)), OutboxRow.finished_at < finished_before)
                .limit(limit)
            ).all()
            if not ids:
                return 0
            return rowcount(s.execute(delete(OutboxRow).where(OutboxRow.id.in_(ids))))
