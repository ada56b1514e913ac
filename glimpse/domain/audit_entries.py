"""The audit log's and the retention policies' plain data, and the entries waiting for the transaction of their change.

A leaf of the domain like entities.py: db/ names these types to store them. A use case announces the entry of the
change it is about to make (`recording`); the database writes the entries announced in the same transaction as the
first write that follows, so a change and its audit row commit, or fail, together. A fence rides along: a retention
run's deletion commits only while its lease is still the one it holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The target types of the audit log.
IMAGE, MEMBER, TAG, LOCATION, IMPORT, METADEF, POLICY, AUDIT = (
    "image", "member", "tag", "location", "import", "metadef", "retention_policy", "audit",
)  # fmt: skip


@dataclass(frozen=True)
class AuditEntry:
    """One change: who (user, project, roles, or the retention policy acting), what, on what, and the changed
    fields' values before and after ({field: [before, after]}; secrets never)."""

    action: str
    target_type: str
    target_id: str
    user_id: str | None = None
    project_id: str | None = None
    roles: tuple[str, ...] = ()
    request_id: str = ""
    target_project: str | None = None  # the owner of what changed (an image's owner)
    policy_id: str | None = None  # set when a retention policy made the change
    changes: dict[str, list[Any]] = field(default_factory=dict)
    id: int = 0  # given by the database, growing: the order of the log and its marker
    created_at: datetime | None = None


@dataclass(frozen=True)
class AuditQuery:
    target_id: str | None = None
    project_id: str | None = None  # the actor's project or the target's owner
    user_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    marker: int | None = None
    limit: int = 25
    newest_first: bool = True


@dataclass(frozen=True)
class LeaseFence:
    """A lease a node holds: valid while the lease row still names this holder and generation, unexpired."""

    name: str
    holder: str
    generation: int


@dataclass(frozen=True)
class RetentionPolicy:
    """Which images (a project's, a family's, or a family's within a project) and what to keep of them."""

    id: str
    project_id: str | None
    os_family: str | None
    keep_newest: int | None
    max_age_days: int | None
    created_by: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class Candidate:
    """An image as retention sees it: enough to order it, and whether something keeps it."""

    id: str
    created_at: datetime
    status: str
    protected: bool
    owner: str | None
    name: str | None = None
    os_family: str | None = None
    referenced_by: tuple[str, ...] = ()  # why it is in use: "base_image_ref of <id>", "accepted member <p>", ...


@dataclass(frozen=True)
class Pending:
    entries: tuple[AuditEntry, ...]
    fence: LeaseFence | None = None


_pending: ContextVar[Pending | None] = ContextVar("glimpse_audit_pending", default=None)


@contextmanager
def recording(*entries: AuditEntry, fence: LeaseFence | None = None) -> Iterator[None]:
    """The next writing transaction in this context carries these entries (and checks the fence)."""
    outer = _pending.get()
    fence = fence or (outer.fence if outer else None)
    token = _pending.set(Pending(entries, fence))
    try:
        yield
    finally:
        _pending.reset(token)


@contextmanager
def fenced(fence: LeaseFence) -> Iterator[None]:
    """Every write announced with `recording` inside this context also checks the fence."""
    token = _pending.set(Pending((), fence))
    try:
        yield
    finally:
        _pending.reset(token)


def take_pending() -> Pending | None:
    """The announced entries, once: the first writing transaction takes them (the fence stays for the next)."""
    pending = _pending.get()
    if pending is None or not pending.entries:
        return None
    _pending.set(Pending((), pending.fence))
    return pending
