"""glimpse.domain.listing: GET /v2/images query parameters -> ImageQuery."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import pytest

from glimpse.auth.context import RequestContext
from glimpse.domain.entities import Comparison, ImageQuery
from glimpse.domain.listing import SORT_KEYS, parse_query, parse_sort, parse_time
from glimpse.errors import BadRequest

USER = RequestContext(project_id="p1", user_id="u1")
ADMIN = RequestContext(project_id="adm", user_id="u0", roles=frozenset({"admin", "member"}), is_admin=True)


def query(params: Mapping[str, Sequence[str]], ctx: RequestContext = USER) -> ImageQuery:
    return parse_query(params, ctx, default_limit=25, max_limit=100)


# --- sorting -------------------------------------------------------------------------------------


def test_default_sort_is_created_at_desc_then_id() -> None:
    assert parse_sort({}) == [("created_at", "desc"), ("id", "desc")]


def test_sort_keys_are_exactly_glances() -> None:
    assert set(SORT_KEYS) == {
        "name",
        "status",
        "container_format",
        "disk_format",
        "size",
        "id",
        "created_at",
        "updated_at",
    }


@pytest.mark.parametrize("key", SORT_KEYS)
def test_every_sort_key_is_accepted(key: str) -> None:
    pairs = parse_sort({"sort": [f"{key}:asc"]})
    assert pairs[0] == (key, "asc")
    assert pairs[-1][0] == "id"


@pytest.mark.parametrize("key", ["owner", "visibility", "min_ram", "checksum", "foo", "", "protected"])
def test_other_sort_keys_are_refused(key: str) -> None:
    with pytest.raises(BadRequest, match="Invalid sort key"):
        parse_sort({"sort": [f"{key}:asc"]})
    with pytest.raises(BadRequest, match="Invalid sort key"):
        parse_sort({"sort_key": [key]})


@pytest.mark.parametrize("params", [{"sort": ["name:up"]}, {"sort_key": ["name"], "sort_dir": ["ascending"]}])
def test_bad_sort_direction(params: dict[str, list[str]]) -> None:
    with pytest.raises(BadRequest, match="Invalid sort direction"):
        parse_sort(params)


@pytest.mark.parametrize(
    "params",
    [
        {"sort": ["name:asc"], "sort_key": ["name"]},
        {"sort": ["name:asc"], "sort_dir": ["asc"]},
        {"sort": ["name"], "sort_key": ["size"], "sort_dir": ["desc"]},
    ],
)
def test_sort_and_sort_key_together_is_bad_request(params: dict[str, list[str]]) -> None:
    with pytest.raises(BadRequest, match="cannot be combined"):
        parse_sort(params)
    with pytest.raises(BadRequest):
        query(params)


def test_new_syntax_defaults_to_desc() -> None:
    assert parse_sort({"sort": ["name,size:asc"]})[:2] == [("name", "desc"), ("size", "asc")]


def test_new_syntax_tolerates_spaces_after_commas() -> None:
    assert parse_sort({"sort": ["name:asc, size:desc"]})[:2] == [("name", "asc"), ("size", "desc")]


def test_new_syntax_strips_key_and_direction() -> None:
    # Glance strips both halves of each `key:dir` item (key.strip(), dir.strip()).
    assert parse_sort({"sort": ["name: asc"]})[:1] == [("name", "asc")]


def test_classic_syntax_one_dir_applies_to_every_key() -> None:
    assert parse_sort({"sort_key": ["name", "size"], "sort_dir": ["asc"]}) == [
        ("name", "asc"),
        ("size", "asc"),
        ("created_at", "asc"),
        ("id", "asc"),
    ]


def test_classic_syntax_dirs_pair_with_keys() -> None:
    assert parse_sort({"sort_key": ["name", "size"], "sort_dir": ["asc", "desc"]})[:2] == [
        ("name", "asc"),
        ("size", "desc"),
    ]


def test_classic_syntax_dir_count_mismatch() -> None:
    with pytest.raises(BadRequest, match="Number of sort dirs"):
        parse_sort({"sort_key": ["name", "size", "status"], "sort_dir": ["asc", "desc"]})


def test_classic_sort_dir_without_key_sorts_by_created_at() -> None:
    assert parse_sort({"sort_dir": ["asc"]}) == [("created_at", "asc"), ("id", "asc")]


def test_classic_default_dir_is_desc() -> None:
    assert parse_sort({"sort_key": ["name"]}) == [("name", "desc"), ("created_at", "desc"), ("id", "desc")]


@pytest.mark.parametrize(
    "params",
    [
        {"sort": ["name:asc"]},
        {"sort": ["status:desc,size:asc"]},
        {"sort_key": ["disk_format", "container_format"]},
        {"sort_key": ["updated_at"], "sort_dir": ["asc"]},
    ],
)
def test_created_at_and_id_are_appended_as_tie_breakers(params: dict[str, list[str]]) -> None:
    keys = [k for k, _ in parse_sort(params)]
    assert keys[-2:] == ["created_at", "id"]
    assert len(keys) == len(set(keys))


def test_tie_breakers_follow_a_single_direction() -> None:
    assert parse_sort({"sort": ["name:asc"]}) == [("name", "asc"), ("created_at", "asc"), ("id", "asc")]


def test_tie_breakers_are_desc_when_several_directions_given() -> None:
    # Glance's image_get_all: default_sort_dir is 'desc' unless exactly one sort_dir was given;
    # created_at and id are appended with default_sort_dir.
    assert parse_sort({"sort": ["name:desc,size:asc"]})[2:] == [("created_at", "desc"), ("id", "desc")]


def test_existing_created_at_is_not_repeated() -> None:
    assert parse_sort({"sort": ["created_at:asc,name:desc"]}) == [
        ("created_at", "asc"),
        ("name", "desc"),
        ("id", "desc"),
    ]


def test_sort_by_id_needs_no_tie_breaker() -> None:
    pairs = parse_sort({"sort": ["id:asc"]})
    assert pairs[0] == ("id", "asc")
    assert [k for k, _ in pairs].count("id") == 1


# --- filters -------------------------------------------------------------------------------------


def test_defaults() -> None:
    q = query({})
    assert q.viewer == "p1"
    assert q.limit == 25
    assert q.marker is None
    assert q.os_hidden is False
    assert q.member_status == "accepted"
    assert q.columns == {}
    assert q.properties == {}
    assert q.tags == []
    assert q.visibility is None


def test_admin_has_no_viewer_restriction() -> None:
    q = query({}, ADMIN)
    assert q.viewer is None
    assert q.admin_project == "adm"


def test_non_admin_without_project_gets_an_empty_viewer() -> None:
    assert query({}, RequestContext(project_id=None, user_id="u")).viewer == ""


@pytest.mark.parametrize(("value", "expected"), [("10", 10), ("0", 0), ("100", 100), ("5000", 100)])
def test_limit(value: str, expected: int) -> None:
    assert query({"limit": [value]}).limit == expected


@pytest.mark.parametrize("value", ["-1", "abc", "1.5", ""])
def test_bad_limit(value: str) -> None:
    with pytest.raises(BadRequest, match="limit"):
        query({"limit": [value]})


def test_marker() -> None:
    assert query({"marker": ["abc"]}).marker == "abc"


@pytest.mark.parametrize("key", ["name", "status", "id", "container_format", "disk_format"])
def test_in_operator(key: str) -> None:
    values = {"status": "in:active,queued"}.get(key, "in:a,b")
    q = query({key: [values]})
    assert q.columns[key] == Comparison("in", values[3:].split(","))


def test_in_operator_with_quoted_commas() -> None:
    q = query({"name": ['in:a,"b,c", d']})
    assert q.columns["name"] == Comparison("in", ["a", "b,c", "d"])


@pytest.mark.parametrize("key", ["owner", "checksum", "os_hash_value"])
def test_in_operator_refused_elsewhere(key: str) -> None:
    with pytest.raises(BadRequest, match="'in' operator"):
        query({key: ["in:a,b"]})


@pytest.mark.parametrize("key", ["name", "owner", "container_format", "disk_format", "checksum", "os_hash_value", "id"])
def test_equality_column_filters(key: str) -> None:
    assert query({key: ["v"]}).columns[key] == Comparison("eq", "v")
    assert query({key: ["v"]}).properties == {}


def test_status_filter_validated() -> None:
    assert query({"status": ["active"]}).columns["status"] == Comparison("eq", "active")
    with pytest.raises(BadRequest, match="status"):
        query({"status": ["bogus"]})


def test_unknown_keys_become_property_filters() -> None:
    q = query({"os_distro": ["ubuntu"], "hw_disk_bus": ["scsi"]})
    assert q.properties == {"os_distro": "ubuntu", "hw_disk_bus": "scsi"}
    assert q.columns == {}


def test_last_value_of_a_repeated_filter_wins() -> None:
    assert query({"foo": ["a", "b"]}).properties == {"foo": "b"}


def test_empty_value_list_is_ignored() -> None:
    assert query({"foo": []}).properties == {}


def test_tags_accumulate() -> None:
    assert query({"tag": ["a", "b"]}).tags == ["a", "b"]


def test_changes_since_is_bad_request() -> None:
    with pytest.raises(BadRequest, match="changes-since"):
        query({"changes-since": ["2020-01-01T00:00:00Z"]})


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), ("TRUE", True)])
def test_protected_filter(value: str, expected: bool) -> None:
    assert query({"protected": [value]}).columns["protected"] == Comparison("eq", expected)


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False)])
def test_os_hidden_filter(value: str, expected: bool) -> None:
    assert query({"os_hidden": [value]}).os_hidden is expected


@pytest.mark.parametrize("key", ["protected", "os_hidden"])
@pytest.mark.parametrize("value", ["yes", "1", "0", "", "t", "null"])
def test_boolean_filters_accept_only_true_false(key: str, value: str) -> None:
    with pytest.raises(BadRequest, match="Valid values are 'true' or 'false'"):
        query({key: [value]})


@pytest.mark.parametrize("value", ["public", "private", "shared", "community", "all"])
def test_visibility_filter(value: str) -> None:
    assert query({"visibility": [value]}).visibility == value


def test_bad_visibility() -> None:
    with pytest.raises(BadRequest, match="visibility"):
        query({"visibility": ["everyone"]})


@pytest.mark.parametrize("value", ["pending", "accepted", "rejected", "all"])
def test_member_status(value: str) -> None:
    assert query({"member_status": [value]}).member_status == value


def test_bad_member_status() -> None:
    with pytest.raises(BadRequest):
        query({"member_status": ["maybe"]})


def test_size_bounds() -> None:
    q = query({"size_min": ["10"], "size_max": ["20"]})
    assert (q.size_min, q.size_max) == (10, 20)


@pytest.mark.parametrize("key", ["size_min", "size_max"])
@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_bad_size_bounds(key: str, value: str) -> None:
    with pytest.raises(BadRequest):
        query({key: [value]})


@pytest.mark.parametrize("key", ["min_ram", "min_disk", "virtual_size"])
def test_integer_column_filters(key: str) -> None:
    assert query({key: ["512"]}).columns[key] == Comparison("eq", 512)
    with pytest.raises(BadRequest):
        query({key: ["lots"]})


@pytest.mark.parametrize("key", ["created_at", "updated_at"])
@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte", "eq", "neq"])
def test_time_filters(key: str, op: str) -> None:
    q = query({key: [f"{op}:2020-01-02T03:04:05Z"]})
    assert q.columns[key] == Comparison(op, datetime(2020, 1, 2, 3, 4, 5))


def test_time_filter_without_operator_is_eq() -> None:
    assert query({"created_at": ["2020-01-02T03:04:05Z"]}).columns["created_at"] == Comparison(
        "eq", datetime(2020, 1, 2, 3, 4, 5)
    )


def test_bad_time_filter() -> None:
    with pytest.raises(BadRequest, match="created_at"):
        query({"created_at": ["gt:yesterday"]})


def test_parse_time_converts_to_naive_utc() -> None:
    assert parse_time("2020-01-02T05:04:05+02:00") == datetime(2020, 1, 2, 3, 4, 5)
    assert parse_time("2020-01-02T03:04:05") == datetime(2020, 1, 2, 3, 4, 5)


def test_query_sorting_comes_from_parse_sort() -> None:
    assert query({"sort": ["size:asc"]}).sort == [("size", "asc"), ("created_at", "asc"), ("id", "asc")]
