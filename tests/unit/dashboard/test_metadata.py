"""The metadata editor's form -> JSON-patch operations, and the catalog's checks of a value."""

from __future__ import annotations

import pytest

from glimpse.dashboard.metadata import changes
from glimpse.domain.metadef_catalog import CatalogNamespace, CatalogProperty, catalog_property, check_value
from glimpse.errors import BadRequest

BUS = catalog_property("hw_disk_bus", {"title": "Disk bus", "type": "string", "enum": ["scsi", "virtio"]}, "")
CORES = catalog_property("hw_cores", {"title": "Cores", "type": "integer"}, "")
SECURE = catalog_property("os_secure_boot", {"title": "Secure boot", "type": "boolean"}, "")
RATIO = catalog_property("ratio", {"title": "Ratio", "type": "number"}, "obj")
NS = CatalogNamespace("OS::Test", "Test", "", (BUS, CORES, SECURE, RATIO))


def test_property_choices_come_from_enum_or_boolean() -> None:
    assert BUS.choices == ("scsi", "virtio") and SECURE.choices == ("true", "false") and CORES.choices == ()
    assert RATIO.group == "obj" and RATIO.title == "Ratio"
    untitled = catalog_property("x", {}, "")
    assert (untitled.title, untitled.type) == ("x", "string")


@pytest.mark.parametrize(
    ("prop", "value", "ok"),
    [(BUS, "virtio", True), (BUS, "ide", False), (CORES, "4", True), (CORES, "4.5", False),
     (RATIO, "1.5", True), (RATIO, "lots", False), (SECURE, "true", True), (SECURE, "yes", False)],
)  # fmt: skip
def test_check_value(prop: CatalogProperty, value: str, ok: bool) -> None:
    if ok:
        assert check_value(prop, value) == value
    else:
        with pytest.raises(BadRequest, match=prop.title):
            check_value(prop, value)


def test_filled_fields_set_ticked_boxes_remove_and_the_rest_stay() -> None:
    form = {"md:hw_disk_bus": "virtio", "md:hw_cores": " 4 ", "remove:os_secure_boot": "on", "md:ratio": "",
            "md:unknown": "x", "remove:unknown": "on"}  # fmt: skip
    current = {"hw_cores": "4", "os_secure_boot": "true", "unknown": "1"}
    ops = changes(form, NS, current)
    assert ops == [
        {"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
        {"op": "remove", "path": "/os_secure_boot"},
    ]


def test_removing_what_is_not_set_changes_nothing() -> None:
    assert changes({"remove:hw_cores": "on"}, NS, {}) == []
