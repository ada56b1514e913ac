"""Who may do what with which property: the rules of Glance's property_utils, checked case by case."""

from __future__ import annotations

from pathlib import Path

import pytest

from glimpse.auth.context import RequestContext
from glimpse.auth.policy import Policy
from glimpse.domain.entities import Image
from glimpse.domain.property_rules import parse
from glimpse.domain.protections import UNPROTECTED, PropertyProtections
from glimpse.errors import Forbidden

ROLES = """
[^x_owner_.*]
create = admin,member
read = admin,member
update = admin,member
delete = admin,member

[spl_read_only_prop]
create = admin
read = admin,spl_role
update = admin
delete = admin

[x_none_read]
create = admin,member
read = !
update = !
delete = !

[x_case_insensitive]
create = admin,Member
read = admin,Member
update = admin,Member
delete = admin,Member

[x_empty]
create =
read = @
update = @
delete = @

[.*]
create = admin
read = admin
update = admin
delete = admin
"""


def ctx(*roles: str) -> RequestContext:
    return RequestContext(project_id="p1", user_id="u1", roles=frozenset(roles))


@pytest.fixture
def rules() -> PropertyProtections:
    return PropertyProtections(parse(ROLES, "roles", "t"))


def test_the_first_matching_section_decides(rules: PropertyProtections) -> None:
    assert rules.allows(ctx("member"), "x_owner_foo", "update")
    assert not rules.allows(ctx("member"), "foo", "read")  # [.*]
    assert rules.allows(ctx("admin"), "foo", "delete")


def test_sections_are_searched_anywhere_in_the_name_as_glance_does(rules: PropertyProtections) -> None:
    # [spl_read_only_prop] has no anchor: Glance's re.search finds it inside a longer name.
    assert rules.allows(ctx("spl_role"), "my_spl_read_only_prop_2", "read")
    assert not rules.allows(ctx("spl_role"), "my_spl_read_only_prop_2", "update")


def test_nobody_means_nobody_the_admin_included(rules: PropertyProtections) -> None:
    assert rules.allows(ctx("admin"), "x_none_read", "create")
    assert not rules.allows(ctx("admin"), "x_none_read", "read")


def test_roles_match_whatever_their_case(rules: PropertyProtections) -> None:
    assert rules.allows(ctx("member"), "x_case_insensitive", "read")
    assert rules.allows(ctx("MEMBER"), "x_case_insensitive", "read")


def test_an_empty_operation_allows_nobody(rules: PropertyProtections) -> None:
    assert not rules.allows(ctx("admin"), "x_empty", "create")
    assert rules.allows(ctx(), "x_empty", "read")


def test_a_property_no_section_matches_is_closed_to_everyone() -> None:
    narrow = PropertyProtections(parse("[^a$]\ncreate=@\nread=@\nupdate=@\ndelete=@\n", "roles", "t"))
    assert narrow.allows(ctx(), "a", "create")
    for op in ("create", "read", "update", "delete"):
        assert not narrow.allows(ctx("admin"), "b", op)
    assert not PropertyProtections(()).allows(ctx("admin"), "b", "read")  # a file without sections


def test_the_server_namespace_is_open_and_no_file_means_no_protection(rules: PropertyProtections) -> None:
    assert rules.allows(ctx(), "os_glance_importing_to_stores", "read")
    assert UNPROTECTED.allows(ctx(), "anything", "delete")
    assert not rules.allows(ctx("admin"), "foo", "list")  # not an operation


def test_reading_hides_and_require_refuses_in_glances_words(rules: PropertyProtections) -> None:
    image = Image(id="i", owner="p1", properties={"x_owner_a": "1", "foo": "2", "x_none_read": "3"})
    assert rules.shown(ctx("member"), image).properties == {"x_owner_a": "1"}
    assert image.properties["foo"] == "2"  # the stored image is untouched
    assert rules.hidden(ctx("admin"), image.properties) == {"x_none_read": "3"}
    with pytest.raises(Forbidden, match=r"Attribute 'foo' is reserved\."):
        rules.require(ctx("member"), "foo", "create")


def test_policies_name_rules_of_the_policy_file(tmp_path: Path) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"glance_creator": "role:admin or role:spl_role"\n')
    text = "[spl_creator_policy]\ncreate=glance_creator\nread=default\nupdate=context_is_admin\ndelete=typo_rule\n"
    text += "[.*]\ncreate=@\nread=!\nupdate=context_is_admin\ndelete=context_is_admin\n"
    rules = PropertyProtections(parse(text, "policies", "t"), "policies", Policy(str(policy_file)))
    assert rules.allows(ctx("spl_role"), "spl_creator_policy", "create")
    assert not rules.allows(ctx("member"), "spl_creator_policy", "create")
    assert rules.allows(ctx("member"), "spl_creator_policy", "read")  # Glance's `default` rule is ""
    assert not rules.allows(ctx("spl_role"), "spl_creator_policy", "update")
    # A rule no policy defines allows nobody (oslo.policy alone would fall back on `default`: everyone).
    assert not rules.allows(ctx("admin"), "spl_creator_policy", "delete")
    assert rules.allows(ctx(), "other", "create") and not rules.allows(ctx("admin"), "other", "read")
