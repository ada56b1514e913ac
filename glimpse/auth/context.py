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
    # The token's scope beyond a project: "all" for a system-scoped token, or a domain-scoped token's domain.
    system_scope: str | None = None
    domain_id: str | None = None
    user_domain_id: str | None = None
    project_domain_id: str | None = None
    # The client's address, as the connection shows it (image.send's destination_ip).
    remote_address: str | None = None

    @property
    def owner(self) -> str | None:
        """Images belong to projects, not users."""
        return self.project_id

    def owns(self, owner: str | None) -> bool:
        """True when the image's owner is the caller's project; an absent project owns nothing."""
        return owner is not None and self.project_id is not None and owner == self.project_id
