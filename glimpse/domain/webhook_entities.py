"""Webhooks' plain data and the outbox's port: what db/ implements and the domain's webhook rules use.

A leaf module like entities.py: it imports nothing but the standard library.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

PENDING, SENDING, DELIVERED, FAILED = "pending", "sending", "delivered", "failed"


@dataclass(frozen=True)
class Webhook:
    id: str
    project_id: str | None  # None: global, every project's events (an administrator's)
    url: str
    secret: str
    events: tuple[str, ...]  # event types or groups (image, image.member); empty: every event
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class OutgoingEvent:
    """One event for the outbox, before it is matched to webhooks: the body is its CloudEvents document."""

    event_id: str
    event_type: str  # Glance's (image.update), matched against the webhooks' event lists
    subject: str
    body: str


@dataclass(frozen=True)
class Delivery:
    """One event for one webhook, as the delivery log shows it."""

    webhook_id: str
    event_id: str
    event_type: str
    subject: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class Claim:
    """A row a sender holds: until lease_until, and only while its token is the row's (the fence)."""

    row_id: int
    token: str
    webhook_id: str
    url: str
    secret: str
    event_id: str
    body: str
    attempts: int  # this attempt included


class WebhookRepository(Protocol):
    def add(self, webhook: Webhook) -> Webhook: ...

    def get(self, webhook_id: str) -> Webhook:
        """NotFound when there is no such webhook."""
        ...

    def list(self, project_id: str | None, every: bool) -> builtins.list[Webhook]:
        """every: all webhooks (an admin's view); else those of project_id."""
        ...

    def count(self, project_id: str | None) -> int: ...

    def save(self, webhook: Webhook) -> Webhook: ...

    def delete(self, webhook_id: str) -> None:
        """The webhook and every outbox row of it; NotFound when there is no such webhook."""
        ...

    def enqueue(self, event: OutgoingEvent, projects: Iterable[str], image_id: str | None) -> int:
        """One pending row per enabled webhook that wants the event: global ones, those of `projects` and of
        the owner of image_id (read in the same transaction). Returns the rows written."""
        ...

    def enqueue_for(self, webhook_id: str, event: OutgoingEvent) -> None:
        """One pending row for this webhook alone (a test event)."""
        ...

    def deliveries(self, webhook_id: str, limit: int) -> builtins.list[Delivery]:
        """The newest first."""
        ...


class Outbox(Protocol):
    def claim(self, node: str, limit: int, lease_seconds: float) -> builtins.list[Claim]:
        """Up to `limit` rows due now (pending and due, or sending with an expired lease), each the oldest unfinished
        row of its webhook and subject, leased to `node` with a fresh token."""
        ...

    def delivered(self, claim: Claim, status_code: int) -> bool:
        """Record success; False when the lease was lost (another sender holds the row now)."""
        ...

    def retry(self, claim: Claim, status_code: int | None, error: str, at: datetime | None) -> bool:
        """Record a failed attempt: pending again until `at`, or failed for good when `at` is None."""
        ...

    def purge(self, finished_before: datetime, limit: int) -> int:
        """Delete delivered and failed rows finished before then; returns how many."""
        ...


def wants_event(events: Iterable[str], event_type: str) -> bool:
    """Whether a webhook listing `events` gets event_type: an exact type or any dotted prefix of it (image,
    image.member); an empty list takes every event."""
    wanted = tuple(events)
    if not wanted:
        return True
    parts = event_type.split(".")
    return any(".".join(parts[:n]) in wanted for n in range(1, len(parts) + 1))
