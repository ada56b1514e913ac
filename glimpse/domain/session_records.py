"""A dashboard session as the shared session store keeps it, and the port the dashboard reaches it through.

Every API node reads the same store, so a login on one node is valid on all, and a logout or an admin's
revocation on one is seen by all on their next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredSession:
    key: str  # the SHA-256 of the cookie's random id: never a usable cookie by itself
    data: dict[str, Any]
    expires_at: datetime  # naive UTC
    created_at: datetime
    user_id: str | None = None
    user_name: str | None = None
    project_id: str | None = None
    project_name: str | None = None


class SessionStore(Protocol):
    def get(self, key: str) -> StoredSession | None:
        """The live session, None when absent or expired (an expired one is deleted on the way)."""

    def put(self, session: StoredSession) -> None: ...

    def delete(self, key: str) -> bool: ...

    def delete_user(self, user: str) -> int:
        """Revoke every session of a user (id or name); returns how many."""

    def active(self) -> list[StoredSession]: ...

    def sweep(self) -> int:
        """Delete the expired sessions; returns how many."""
