"""The retention rules: which images a policy deletes, in which order, and what keeps an image."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from glimpse.domain.audit import POLICY_ACTOR
from glimpse.domain.audit_entries import Candidate, RetentionPolicy
from glimpse.domain.retention import acting_context, parse_policy, plan
from glimpse.errors import BadRequest

NOW = datetime(2026, 6, 1, 12, 0, 0)


def policy(keep: int | None = None, days: int | None = None) -> RetentionPolicy:
    return RetentionPolicy("p-1", "proj", None, keep, days)


def image(name: str, age_days: float, **kw: Any) -> Candidate:
    fields: dict[str, Any] = {"id": name, "status": "active", "protected": False, "owner": "proj", **kw}
    return Candidate(created_at=NOW - timedelta(days=age_days), name=name, **fields)


def deleted(decisions: list[Any]) -> list[str]:
    return [d.image_id for d in decisions if d.delete]


def test_keep_newest_deletes_the_older_ones_newest_first() -> None:
    images = [image("a", 5), image("b", 1), image("c", 3), image("d", 4)]
    decisions = plan(policy(keep=2), images, NOW)
    assert [d.image_id for d in decisions] == ["b", "c", "d", "a"]
    assert deleted(decisions) == ["d", "a"]
    assert decisions[2].reason == "#3 newest, beyond the 2 kept"


def test_ties_on_created_at_are_broken_by_id_the_same_way_every_time() -> None:
    same = NOW - timedelta(days=2)
    images = [Candidate(id=i, created_at=same, status="active", protected=False, owner="proj") for i in ("b", "c", "a")]
    for order in (images, list(reversed(images))):
        assert deleted(plan(policy(keep=1), order, NOW)) == ["b", "a"]


def test_protected_and_referenced_images_stay_and_do_not_count_against_n() -> None:
    images = [
        image("new", 1),
        image("protected", 2, protected=True),
        image("base", 3, referenced_by=("base_image_ref of image x",)),
        image("shared", 4, referenced_by=("accepted by member other",)),
        image("old", 5),
    ]
    decisions = {d.image_id: d for d in plan(policy(keep=1), images, NOW)}
    assert deleted(list(decisions.values())) == ["old"]
    assert decisions["protected"].reason == "protected"
    assert decisions["base"].reason == "in use: base_image_ref of image x"
    assert decisions["shared"].reason == "in use: accepted by member other"


def test_max_age_deletes_only_images_older_than_the_limit() -> None:
    images = [image("young", 9.9), image("old", 10.1), image("older", 30, referenced_by=("replacement_image of y",))]
    decisions = plan(policy(days=10), images, NOW)
    assert deleted(decisions) == ["old"]
    assert {d.image_id: d.reason for d in decisions}["young"] == "younger than 10 days"


def test_both_rules_must_allow_a_deletion() -> None:
    images = [image("n1", 30), image("n2", 40), image("young-but-third", 1), image("old-and-fourth", 50)]
    # Newest first: young-but-third (1 day), n1, n2, old-and-fourth: keep 2 -> n2 and the oldest may go, both old.
    assert deleted(plan(policy(keep=2, days=20), images, NOW)) == ["n2", "old-and-fourth"]
    assert deleted(plan(policy(keep=1, days=35), images, NOW)) == ["n2", "old-and-fourth"]
    assert deleted(plan(policy(keep=4, days=1), images, NOW)) == []


def test_an_empty_scope_deletes_nothing() -> None:
    assert plan(policy(keep=1), [], NOW) == []


def test_policies_parse_and_refuse_bad_input() -> None:
    parsed = parse_policy({"os_family": "ubuntu", "keep_newest": 3}, "admin-user")
    assert (parsed.project_id, parsed.os_family, parsed.keep_newest, parsed.created_by) == (
        None, "ubuntu", 3, "admin-user",
    )  # fmt: skip
    for bad in (
        [],
        {"keep_newest": 3},  # no scope
        {"project_id": "p"},  # no rule
        {"project_id": "p", "keep_newest": 0},
        {"project_id": "p", "keep_newest": True},
        {"project_id": "p", "keep_newest": "3"},
        {"project_id": "p", "max_age_days": 0},
        {"project_id": "", "keep_newest": 1},
        {"project_id": "x" * 256, "keep_newest": 1},
        {"project_id": "p", "keep_newest": 1, "delete_everything": True},
    ):
        with pytest.raises(BadRequest):
            parse_policy(bad, None)


def test_a_policy_acts_as_itself() -> None:
    ctx = acting_context(policy(keep=1), "req-retention-1")
    assert ctx.user_id == f"{POLICY_ACTOR}p-1"
    assert ctx.is_admin and ctx.project_id == "proj" and ctx.request_id == "req-retention-1"
