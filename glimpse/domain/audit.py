"""The audit log: the entry each change announces (who, what, the changed fields before and after, no secrets),
and the administrators' queries of it (GET /v2/audit, `glimpse audit list`).

Secrets never enter a row: a location's URL loses its credentials and secret-looking query values, and the
value of a property whose name looks like a secret (password, secret, token, key, credential) is masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from glimpse.auth.context import RequestContext
from glimpse.domain.audit_entries import (
    AUDIT,
    IMAGE,
    AuditEntry,
    AuditQuery,
    recording,
)
from glimpse.domain.authorization import Authorizer
from glimpse.domain.entities import Image, Location
from glimpse.domain.inputs import parse_count
from glimpse.domain.listing import parse_time
from glimpse.errors import BadRequest
from glimpse.logsafe import MASK, redact_url

# The user id a retention policy acts under: "retention-policy:<policy id>" (its rows also carry policy_id).
POLICY_ACTOR = "retention-policy:"
SECRET_NAME = re.compile(r"pass(word)?|secret|token|credential|private|(^|_)key($|_)|api_key", re.IGNORECASE)
IMAGE_FIELDS = (
    "name", "status", "visibility", "protected", "os_hidden", "owner", "checksum", "os_hash_algo",
    "os_hash_value", "size", "virtual_size", "container_format", "disk_format", "min_disk", "min_ram",
)  # fmt: skip
QUERY_KEYS = frozenset({"target_id", "project", "user", "action", "since", "until", "marker", "limit", "sort_dir"})
MAX_PAGE = 1000


class AuditLog(Protocol):
    def list(self, q: AuditQuery) -> list[AuditEntry]: ...

    def append(self, entry: AuditEntry) -> None: ...

    def purge(self, older_than_days: int, batch: int = 1000) -> int: ...


def entry(
    ctx: RequestContext,
    action: str,
    target_type: str,
    target_id: str,
    target_project: str | None = None,
    changes: Mapping[str, list[Any]] | None = None,
) -> AuditEntry:
    """The entry of a change `ctx` makes."""
    user = ctx.user_id
    policy_id = user[len(POLICY_ACTOR) :] if user and user.startswith(POLICY_ACTOR) else None
    return AuditEntry(
        action=action,
        target_type=target_type,
        target_id=target_id,
        user_id=user,
        project_id=ctx.project_id,
        roles=tuple(sorted(ctx.roles)),
        request_id=ctx.request_id,
        target_project=target_project,
        policy_id=policy_id,
        changes=dict(changes or {}),
    )


@contextmanager
def image_change(
    ctx: RequestContext, action: str, before: Image | None, after: Image | None, **extra: list[Any]
) -> Iterator[None]:
    """The next write records `action` on the image with its changed fields."""
    image = after or before
    assert image is not None
    changes = {**image_changes(before, after), **extra}
    with recording(entry(ctx, action, IMAGE, image.id, image.owner, changes)):
        yield


@contextmanager
def change(
    ctx: RequestContext,
    action: str,
    target_type: str,
    target_id: str,
    target_project: str | None = None,
    **changes: list[Any],
) -> Iterator[None]:
    with recording(entry(ctx, action, target_type, target_id, target_project, changes)):
        yield


def shown_value(name: str, value: Any) -> Any:
    """What the log keeps of a value: secrets masked, URLs without credentials."""
    if value is None:
        return None
    if SECRET_NAME.search(name):
        return MASK
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def location_value(location: Location) -> dict[str, Any]:
    return {"url": redact_url(location.url), "store": location.metadata.get("store")}


def image_changes(before: Image | None, after: Image | None) -> dict[str, list[Any]]:
    """{field: [before, after]} for the fields that differ; extra properties by their names, tags as lists."""
    old, new = _fields(before), _fields(after)
    return {
        name: [shown_value(name, old.get(name)), shown_value(name, new.get(name))]
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    }


def _fields(image: Image | None) -> dict[str, Any]:
    if image is None:
        return {}
    fields: dict[str, Any] = {f: getattr(image, f) for f in IMAGE_FIELDS}
    fields["tags"] = sorted(image.tags) or None
    fields.update(image.properties)
    return {k: v for k, v in fields.items() if v is not None}


class AuditService:
    def __init__(self, log: AuditLog, policy: Authorizer, default_limit: int = 25) -> None:
        self.log = log
        self.policy = policy
        self.default_limit = default_limit

    def list(self, ctx: RequestContext, params: Mapping[str, Sequence[str]]) -> tuple[list[AuditEntry], bool]:
        """A page of the log, newest first (sort_dir=asc: oldest first), and whether another page follows."""
        self.policy.enforce(ctx, "get_audit", {"project_id": ctx.project_id})
        query = parse_query(params, self.default_limit)
        entries = self.log.list(AuditQuery(**{**query.__dict__, "limit": query.limit + 1}))
        return entries[: query.limit], len(entries) > query.limit

    def purge(self, ctx: RequestContext, older_than_days: int) -> int:
        """Remove the rows older than that many days; the purge itself is the log's newest row."""
        if older_than_days < 1:
            raise BadRequest("The audit log keeps at least a day: give 1 or more days.")
        removed = self.log.purge(older_than_days)
        changes = {"older_than_days": [None, older_than_days], "removed": [None, removed]}
        self.log.append(entry(ctx, "audit.purge", AUDIT, "audit_log", None, changes))
        return removed


def parse_query(params: Mapping[str, Sequence[str]], default_limit: int) -> AuditQuery:
    unknown = sorted(set(params) - QUERY_KEYS)
    if unknown:
        raise BadRequest(f"Unknown audit filter(s): {', '.join(unknown)}. Known: {', '.join(sorted(QUERY_KEYS))}.")

    def one(key: str) -> str | None:
        values = params.get(key)
        if not values:
            return None
        if len(values[-1]) > 255:
            raise BadRequest(f"The {key} filter is longer than 255 characters.")
        return values[-1]

    limit = min(parse_count(one("limit") or str(default_limit), "limit param"), MAX_PAGE)
    marker = one("marker")
    if marker is not None and not (marker.isascii() and marker.isdigit() and len(marker) < 19):
        raise BadRequest(f"No audit record found with ID {marker}")
    sort_dir = one("sort_dir") or "desc"
    if sort_dir not in ("asc", "desc"):
        raise BadRequest("Invalid sort direction: use asc or desc.")
    since, until = one("since"), one("until")
    return AuditQuery(
        target_id=one("target_id"),
        project_id=one("project"),
        user_id=one("user"),
        action=one("action"),
        since=parse_time(since, "since") if since else None,
        until=parse_time(until, "until") if until else None,
        marker=int(marker) if marker is not None else None,
        limit=max(limit, 1),
        newest_first=sort_dir == "desc",
    )
