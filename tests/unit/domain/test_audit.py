"""What an audit entry keeps of a change (the changed fields, no secrets) and how the log is queried."""

from __future__ import annotations

import pytest

from glimpse.auth.context import RequestContext
from glimpse.domain.audit import entry, image_changes, parse_query, shown_value
from glimpse.domain.entities import Image
from glimpse.errors import BadRequest


def test_only_changed_fields_are_kept() -> None:
    before = Image(id="i", owner="p", name="a", tags=["x"], properties={"os_family": "ubuntu", "keep": "1"})
    after = Image(id="i", owner="p", name="b", tags=["x", "y"], properties={"keep": "1", "os_version": "24.04"})
    assert image_changes(before, after) == {
        "name": ["a", "b"],
        "os_family": ["ubuntu", None],
        "os_version": [None, "24.04"],
        "tags": [["x"], ["x", "y"]],
    }
    assert image_changes(before, before) == {}


def test_secrets_never_enter_the_log() -> None:
    after = Image(
        id="i", owner="p",
        properties={"admin_password": "hunter2", "api_key": "k", "source": "https://user:pw@example.com/x?sig=abc"},
    )  # fmt: skip
    changes = image_changes(None, after)
    assert changes["admin_password"] == [None, "***"]
    assert changes["api_key"] == [None, "***"]
    assert "pw" not in changes["source"][1] and "abc" not in changes["source"][1]
    assert shown_value("keyboard_layout", "us") == "us"  # "key" inside a word is no secret


def test_the_entry_names_the_caller_or_the_policy() -> None:
    ctx = RequestContext("proj", "alice", frozenset({"member", "reader"}), request_id="req-1")
    made = entry(ctx, "image.update", "image", "i", "owner")
    assert (made.user_id, made.project_id, made.roles, made.request_id, made.policy_id) == (
        "alice", "proj", ("member", "reader"), "req-1", None,
    )  # fmt: skip
    acting = RequestContext("proj", "retention-policy:pol-9", frozenset({"admin"}))
    assert entry(acting, "image.delete", "image", "i").policy_id == "pol-9"


def test_queries_parse_and_bad_ones_are_400() -> None:
    q = parse_query({"target_id": ["i"], "since": ["2026-01-01T00:00:00Z"], "limit": ["5000"], "marker": ["7"]}, 25)
    assert (q.target_id, q.limit, q.marker, q.newest_first) == ("i", 1000, 7, True)
    assert parse_query({"sort_dir": ["asc"]}, 25).newest_first is False
    for bad in (
        {"colour": ["red"]}, {"limit": ["-1"]}, {"marker": ["x"]}, {"marker": ["٣"]}, {"since": ["yesterday"]},
        {"sort_dir": ["up"]}, {"user": ["u" * 256]},
    ):  # fmt: skip
        with pytest.raises(BadRequest):
            parse_query(bad, 25)
