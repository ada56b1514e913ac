"""GET /v2/images query parameters -> a checked ImageQuery: filters, sorting, pagination."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from glimpse.auth.context import RequestContext
from glimpse.domain import deprecation
from glimpse.domain.entities import Comparison, ImageQuery
from glimpse.domain.image import STATUSES, VISIBILITIES
from glimpse.domain.inputs import check_text, parse_count
from glimpse.errors import BadRequest

SORT_KEYS = ("name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at")
SORT_DIRS = ("asc", "desc")
IN_KEYS = ("container_format", "disk_format", "id", "name", "status")
EQ_KEYS = ("name", "status", "owner", "container_format", "disk_format", "checksum", "os_hash_value", "id")
TIME_KEYS = ("created_at", "updated_at")
TIME_OPS = ("gt", "gte", "lt", "lte", "eq", "neq")
MEMBER_STATUSES = ("pending", "accepted", "rejected", "all")
MAX_FILTERS = 50  # property and tag filters together: each is one more EXISTS in the query
# Parameters that are not property filters.
CONTROL = {"limit", "marker", "sort", "sort_key", "sort_dir", "tag", "size_min", "size_max", "visibility",
           "member_status", "protected", "os_hidden", "changes-since", deprecation.STATUS}  # fmt: skip


def _one(params: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None


def _int(value: str, name: str) -> int:
    if value.startswith("-") and value[1:].isdigit():
        raise BadRequest(f"{name} param must be positive")
    return parse_count(value, f"{name} param")


def _size_bound(params: Mapping[str, Sequence[str]], key: str) -> int | None:
    value = _one(params, key)
    if value is None:
        return None
    try:
        return parse_count(value, key)
    except BadRequest:
        raise BadRequest("Unable to filter on a range with a non-numeric value.") from None  # Glance's words


def _bool(value: str, name: str) -> bool:
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise BadRequest(f"Invalid value '{value}' for '{name}' filter. Valid values are 'true' or 'false'.")
    return lowered == "true"


def parse_time(value: str, key: str = "created_at") -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):  # OverflowError: 9999-12-31T23:59-05:00 is past year 9999 in UTC
        raise BadRequest(f'Bad "{key}" query filter format. Use ISO 8601 DateTime notation.') from None
    return parsed


def _split_in(value: str) -> list[str]:
    """`in:a,"b,c",d` -> ['a', 'b,c', 'd'] (quote values holding commas)."""
    return next(csv.reader([value], skipinitialspace=True))


def _column_filter(key: str, value: str) -> Comparison:
    if value.startswith("in:"):
        if key not in IN_KEYS:
            raise BadRequest(f"The 'in' operator is not supported for '{key}'.")
        return Comparison("in", _split_in(value[3:]))
    if key == "status" and value not in STATUSES:
        raise BadRequest(f"Invalid status value: {value}")
    return Comparison("eq", value)


def _time_filter(key: str, value: str) -> Comparison:
    op, sep, rest = value.partition(":")
    if not sep or op not in TIME_OPS:
        op, rest = "eq", value
    return Comparison(op, parse_time(rest, key))


def parse_sort(params: Mapping[str, Sequence[str]]) -> list[tuple[str, str]]:
    sort = _one(params, "sort")
    keys, dirs = list(params.get("sort_key", [])), list(params.get("sort_dir", []))
    if sort is not None and (keys or dirs):
        raise BadRequest("Old and new sorting syntax cannot be combined")
    pairs: list[tuple[str, str]] = []
    if sort is not None:
        for item in sort.split(","):
            key, _, direction = item.partition(":")
            pairs.append((key.strip(), direction.strip() or "desc"))
    else:
        if dirs and len(dirs) != 1 and len(dirs) != len(keys):
            raise BadRequest("Number of sort dirs does not match the number of sort keys")
        if dirs and not keys:
            keys = ["created_at"]
        pairs = [(k, dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")) for i, k in enumerate(keys)]
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(f"Invalid sort key: {key}. It must be one of the following: {', '.join(SORT_KEYS)}.")
        if direction not in SORT_DIRS:
            raise BadRequest(f"Invalid sort direction: {direction}")
    if not pairs:
        pairs = [("created_at", "desc")]
    # Tie-breakers as Glance adds them: the one direction given, else descending. id makes the order
    # total, which keyset pagination needs.
    one_direction = {d for _, d in pairs} if len(pairs) == 1 or (len(dirs) == 1 and sort is None) else set()
    tie = one_direction.pop() if len(one_direction) == 1 else "desc"
    if "created_at" not in [k for k, _ in pairs] and "id" not in [k for k, _ in pairs]:
        pairs.append(("created_at", tie))
    if "id" not in [k for k, _ in pairs]:
        pairs.append(("id", tie))
    return pairs


def parse_query(
    params: Mapping[str, Sequence[str]], ctx: RequestContext, *, default_limit: int, max_limit: int
) -> ImageQuery:
    if "changes-since" in params:
        raise BadRequest('The "changes-since" filter is no longer available on v2.')
    q = ImageQuery(viewer=None if ctx.is_admin else (ctx.project_id or ""), admin_project=ctx.project_id)
    limit = _one(params, "limit")
    q.limit = min(_int(limit, "limit") if limit is not None else default_limit, max_limit)
    q.marker = _one(params, "marker")
    q.sort = parse_sort(params)
    visibility = _one(params, "visibility")
    if visibility is not None and visibility not in (*VISIBILITIES, "all"):
        raise BadRequest(f"Invalid visibility value: {visibility}")
    q.visibility = visibility
    member_status = _one(params, "member_status")
    if member_status is not None:
        if member_status not in MEMBER_STATUSES:
            raise BadRequest(f"Invalid status: {member_status}")
        q.member_status = member_status
    protected = _one(params, "protected")
    if protected is not None:
        q.columns["protected"] = Comparison("eq", _bool(protected, "protected"))
    hidden = _one(params, "os_hidden")
    q.os_hidden = _bool(hidden, "os_hidden") if hidden is not None else False
    wanted_states = _one(params, deprecation.STATUS)
    if wanted_states is not None:
        q.deprecation, q.now = deprecation.parse_filter(wanted_states), deprecation.utcnow()
    q.tags = [check_text(tag, "A tag filter") for tag in params.get("tag", [])]
    filters = len(q.tags) + sum(1 for key, values in params.items() if values and key not in CONTROL)
    if filters > MAX_FILTERS:
        raise BadRequest(f"At most {MAX_FILTERS} filters can be combined in one query.")
    q.size_min, q.size_max = _size_bound(params, "size_min"), _size_bound(params, "size_max")
    for key, values in params.items():
        if key in CONTROL or not values:
            continue
        value = values[-1]
        if key in EQ_KEYS:
            q.columns[key] = _column_filter(key, value)
        elif key in TIME_KEYS:
            q.columns[key] = _time_filter(key, value)
        elif key in ("min_ram", "min_disk", "virtual_size"):
            q.columns[key] = Comparison("eq", _int(value, key))
        else:
            q.properties[key] = value
    return q
