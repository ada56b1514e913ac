"""Who is asking: the request context every use case receives."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RequestContext:
    project_id: str | None
    user_id: str | None
    roles: frozenset[str] = frozenset()
    request_id: str = ""
    # Decided by the policy's context_is_admin rule when the request arrives.
    is_admin: bool = False
    # With Keystone: the caller's token and its service catalog (for calls made on the caller's behalf).
    auth_token: str | None = field(default=None, repr=False)
    service_catalog: tuple[dict[str, Any], ...] = ()

    @property
    def owner(self) -> str | None:
        """Images belong to projects, not users."""
        return self.project_id
