from __future__ import annotations

import pytest

from glimpse.dashboard.image_edit import edit_changes
from glimpse.domain.entities import Image
from glimpse.errors import BadRequest

UNCHANGED = {"name": "cirros", "visibility": "shared", "min_disk": "0", "min_ram": "0"}


def _image(**values: object) -> Image:
    return Image(id="i", owner="p", name="cirros", **values)  # type: ignore[arg-type]


def test_only_what_changed_becomes_an_operation() -> None:
    image = _image(properties={"os_distro": "cirros", "a/b": "1", "gone": "x"}, tags=["t"])
    form = {**UNCHANGED, "min_ram": "512", "prop:os_distro": "ubuntu", "prop:a/b": "1", "remove:gone": "on",
            "new_key": "x_new", "new_value": "v", "prop:architecture": "x86_64"}  # fmt: skip
    assert edit_changes(form, image) == [
        {"op": "replace", "path": "/min_ram", "value": 512},
        {"op": "replace", "path": "/os_distro", "value": "ubuntu"},
        {"op": "remove", "path": "/gone"},
        {"op": "add", "path": "/architecture", "value": "x86_64"},
        {"op": "add", "path": "/x_new", "value": "v"},
    ]
    assert edit_changes({**UNCHANGED, "add_tags": "t"}, image) == []


def test_flags_tags_and_formats() -> None:
    form = {**UNCHANGED, "protected": "on", "os_hidden": "on", "disk_format": "raw", "remove_tag:old": "on",
            "add_tags": " b, a ,b,keep"}  # fmt: skip
    queued = _image(disk_format="qcow2", container_format="bare", tags=["old", "keep"])
    assert edit_changes(form, queued) == [
        {"op": "replace", "path": "/protected", "value": True},
        {"op": "replace", "path": "/os_hidden", "value": True},
        {"op": "replace", "path": "/disk_format", "value": "raw"},
        {"op": "replace", "path": "/tags", "value": ["keep", "b", "a"]},
    ]
    active = _image(status="active", disk_format="qcow2", container_format="bare", tags=["old", "keep"])
    assert {"op": "replace", "path": "/disk_format", "value": "raw"} not in edit_changes(form, active)


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"new_key": "a"}, "exists already"), ({"new_key": "protected"}, "exists already"),
     ({"new_value": "1"}, "needs a name"), ({"add_tags": "x" * 256}, "at most 255"),
     ({"min_disk": "-1"}, "whole number")],
)  # fmt: skip
def test_bad_input_is_explained(extra: dict[str, str], message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        edit_changes({**UNCHANGED, **extra}, _image(properties={"a": "1"}))
