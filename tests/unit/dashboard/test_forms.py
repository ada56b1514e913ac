from __future__ import annotations

import pytest

from glimpse.dashboard.forms import create_body, parse_properties
from glimpse.errors import BadRequest


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


@pytest.mark.parametrize("value", ["²", "\u0663", "1" * 30, "2147483648", "-1", "1.5"])
def test_whole_numbers_are_ascii_and_fit_their_column(value: str) -> None:
    with pytest.raises(BadRequest, match="whole number"):
        create_body({"name": "n", "disk_format": "raw", "min_disk": value})
