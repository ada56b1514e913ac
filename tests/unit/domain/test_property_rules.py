"""The property protection file: what Glance accepts is read the same way; what it refuses stops the start-up."""

from __future__ import annotations

import pytest

from glimpse.domain.property_rules import parse
from glimpse.errors import ConfigError

FOUR = "create = {c}\nread = {r}\nupdate = {u}\ndelete = {d}\n"


def section(name: str, c: str = "admin", r: str = "admin", u: str = "admin", d: str = "admin") -> str:
    return f"[{name}]\n" + FOUR.format(c=c, r=r, u=u, d=d)


def test_sections_keep_their_order_and_roles() -> None:
    text = section("^x_.*", c="admin, member,_member_") + section(".*", c="@", d="!")
    first, second = parse(text, "roles", "p.conf")
    assert (first.name, second.name) == ("^x_.*", ".*")
    assert first.allowed["create"] == ("admin", "member", "_member_")
    assert (second.allowed["create"], second.allowed["delete"]) == (("@",), ("!",))


def test_an_empty_value_allows_nobody() -> None:
    (only,) = parse(section("foo", r=""), "roles", "p.conf")
    assert only.allowed["read"] == ()


@pytest.mark.parametrize(
    ("text", "fmt", "words"),
    [
        (section("[unclosed"), "roles", "not a regular expression"),
        ("[foo]\ncreate = admin\nread = admin\nupdate = admin\n", "roles", "does not say delete"),
        (section("foo", u="@,!"), "roles", "exclude each other"),
        (section("foo", c="context_is_admin,default"), "policies", "one policy rule per operation"),
        (section("foo") + section("foo"), "roles", "cannot be read"),
        ("create = admin\n", "roles", "cannot be read"),
        (section("foo"), "rbac", "use roles or policies"),
        (section("foo", c="50%"), "roles", "[foo] create"),
    ],
)
def test_what_glance_refuses_is_a_clear_start_up_error(text: str, fmt: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(text, fmt, "/etc/glance/protect.conf")
    assert words in caught.value.message
    assert "/etc/glance/protect.conf" in caught.value.message or fmt == "rbac"


def test_default_section_supplies_missing_operations_as_configparser_does() -> None:
    (only,) = parse("[DEFAULT]\ndelete = !\n[foo]\ncreate = a\nread = a\nupdate = a\n", "roles", "p")
    assert only.allowed["delete"] == ("!",)


def test_a_section_of_the_server_namespace_is_ignored() -> None:
    sections = parse(section("os_glance_import.*", r="!") + section(".*"), "roles", "p")
    assert [s.name for s in sections] == [".*"]


def test_a_file_without_sections_is_valid() -> None:
    assert parse("# nothing\n", "roles", "p") == ()
