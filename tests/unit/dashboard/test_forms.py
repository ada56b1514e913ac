from __future__ import annotations

import pytest

from glimpse.dashboard.forms import create_body, edit_changes, parse_properties
from glimpse.errors import BadRequest

CURRENT = {"name": "cirros", "visibility": "shared", "min_disk": 0, "min_ram": 0}
UNCHANGED = {"name": "cirros", "visibility": "shared", "min_disk": "0", "min_ram": "0"}


def test_properties_are_key_value_lines() -> None:
    assert parse_properties("a=1\n\n b = x=y \n") == {"a": "1", "b": "x=y"}
    with pytest.raises(BadRequest, match="line 2"):
        parse_properties("a=1\nnot a pair")


def test_create_body_keeps_form_fields_and_properties() -> None:
    body = create_body({"name": "c", "disk_format": "raw", "architecture": "x86_64", "properties": "os_distro=cirros",
                        "min_disk": "2", "protected": "on"})  # fmt: skip
    assert body == {
        "name": "c",
        "disk_format": "raw",
        "container_format": "bare",
        "visibility": "shared",
        "protected": True,
        "min_disk": 2,
        "min_ram": 0,
        "architecture": "x86_64",
        "os_distro": "cirros",
    }


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "c"}, "disk format"),
        ({"disk_format": "raw", "min_ram": "-1"}, "Minimum RAM"),
        ({"disk_format": "raw", "properties": "visibility=public"}, "form's own fields"),
    ],
)
def test_create_body_explains_what_is_wrong(form: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        create_body(form)


def test_edit_changes_only_what_changed() -> None:
    props = {"os_distro": "cirros", "a/b": "1", "gone": "x"}
    form = {**UNCHANGED, "min_ram": "512", "prop:os_distro": "ubuntu", "prop:a/b": "1", "remove:gone": "on",
            "new_key": "os_version", "new_value": "24.04"}  # fmt: skip
    assert edit_changes(form, CURRENT, props) == [
        {"op": "replace", "path": "/min_ram", "value": 512},
        {"op": "replace", "path": "/os_distro", "value": "ubuntu"},
        {"op": "remove", "path": "/gone"},
        {"op": "add", "path": "/os_version", "value": "24.04"},
    ]
    assert edit_changes(UNCHANGED, CURRENT, {}) == []


def test_edit_refuses_a_new_property_that_exists_or_has_no_name() -> None:
    with pytest.raises(BadRequest, match="exists already"):
        edit_changes({**UNCHANGED, "new_key": "a"}, CURRENT, {"a": "1"})
    with pytest.raises(BadRequest, match="needs a name"):
        edit_changes({**UNCHANGED, "new_value": "1"}, CURRENT, {})


@pytest.mark.parametrize("value", ["²", "\u0663", "1" * 30, "2147483648", "-1", "1.5"])
def test_whole_numbers_are_ascii_and_fit_their_column(value: str) -> None:
    with pytest.raises(BadRequest, match="whole number"):
        create_body({"name": "n", "disk_format": "raw", "min_disk": value})
