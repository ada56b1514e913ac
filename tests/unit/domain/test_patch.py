"""glimpse.domain.patch: parsing and applying image JSON-patch documents as Glance does."""

from __future__ import annotations

import pytest

from glimpse.domain.patch import MEDIA_V20, MEDIA_V21, Change, apply_changes, check_writable, parse_changes
from glimpse.domain.schema import BASE_PROPERTIES
from glimpse.errors import BadRequest, Conflict, Forbidden


def _doc(**extra: object) -> dict[str, object]:
    """A document like ImageService._document builds: writable columns, tags and extra properties."""
    doc: dict[str, object] = {
        "name": None,
        "visibility": "shared",
        "protected": False,
        "os_hidden": False,
        "owner": "p1",
        "container_format": None,
        "disk_format": None,
        "min_disk": 0,
        "min_ram": 0,
        "tags": [],
    }
    doc.update(extra)
    return doc


def _apply(doc: dict[str, object], ops: list[dict[str, object]], media: str = MEDIA_V21) -> dict[str, object]:
    return apply_changes(doc, parse_changes(ops, media), media)


# --- parsing -----------------------------------------------------------------------------------


def test_parse_v21_operations() -> None:
    changes = parse_changes(
        [
            {"op": "add", "path": "/foo", "value": "bar"},
            {"op": "replace", "path": "/name", "value": "n"},
            {"op": "remove", "path": "/foo"},
        ],
        MEDIA_V21,
    )
    assert changes == [
        Change("add", ["foo"], "bar"),
        Change("replace", ["name"], "n"),
        Change("remove", ["foo"], None),
    ]


def test_parse_v20_operations() -> None:
    changes = parse_changes(
        [{"add": "/foo", "value": 1}, {"replace": "/name", "value": "n"}, {"remove": "/foo"}], MEDIA_V20
    )
    assert [(c.op, c.path, c.value) for c in changes] == [
        ("add", ["foo"], 1),
        ("replace", ["name"], "n"),
        ("remove", ["foo"], None),
    ]


@pytest.mark.parametrize("op", ["move", "copy", "test", "delete", ""])
def test_only_add_remove_replace_are_operations(op: str) -> None:
    with pytest.raises(BadRequest, match="Invalid operation"):
        parse_changes([{"op": op, "path": "/name", "value": "x", "from": "/name"}], MEDIA_V21)


def test_v20_rejects_other_operation_names() -> None:
    with pytest.raises(BadRequest):
        parse_changes([{"move": "/name", "value": "x"}], MEDIA_V20)


def test_v20_needs_exactly_one_operation_member() -> None:
    with pytest.raises(BadRequest, match="exactly one"):
        parse_changes([{"add": "/a", "replace": "/b", "value": "x"}], MEDIA_V20)


def test_v21_missing_op_or_path() -> None:
    with pytest.raises(BadRequest, match="'op'"):
        parse_changes([{"path": "/name", "value": "x"}], MEDIA_V21)
    with pytest.raises(BadRequest, match="'path'"):
        parse_changes([{"op": "add", "value": "x"}], MEDIA_V21)


@pytest.mark.parametrize("op", ["add", "replace"])
def test_add_and_replace_require_a_value(op: str) -> None:
    with pytest.raises(BadRequest, match='requires a member named "value"'):
        parse_changes([{"op": op, "path": "/name"}], MEDIA_V21)


def test_remove_needs_no_value() -> None:
    assert parse_changes([{"op": "remove", "path": "/foo"}], MEDIA_V21) == [Change("remove", ["foo"])]


def test_value_may_be_null() -> None:
    assert parse_changes([{"op": "replace", "path": "/name", "value": None}], MEDIA_V21)[0].value is None


@pytest.mark.parametrize("body", [{}, "x", None, 1, {"op": "add"}])
def test_body_must_be_a_list(body: object) -> None:
    with pytest.raises(BadRequest, match="JSON array"):
        parse_changes(body, MEDIA_V21)


@pytest.mark.parametrize("item", ["x", 1, None, ["op", "add"]])
def test_operations_must_be_objects(item: object) -> None:
    with pytest.raises(BadRequest, match="JSON objects"):
        parse_changes([item], MEDIA_V21)


@pytest.mark.parametrize(
    "pointer",
    ["", "/", "name", "//name", "/a//b", "/name/", "/~2", "/a~", "/~", 7, None, ["/name"]],
)
def test_invalid_json_pointer_is_bad_request(pointer: object) -> None:
    raw = {"op": "replace", "value": "x"} if pointer is None else {"op": "replace", "path": pointer, "value": "x"}
    with pytest.raises(BadRequest):
        parse_changes([raw], MEDIA_V21)


def test_invalid_json_pointer_v20() -> None:
    with pytest.raises(BadRequest, match="Invalid JSON pointer"):
        parse_changes([{"add": "name", "value": "x"}], MEDIA_V20)


def test_pointer_escapes_are_decoded() -> None:
    changes = parse_changes([{"op": "add", "path": "/a~1b~0c", "value": "x"}], MEDIA_V21)
    assert changes[0].path == ["a/b~c"]


def test_nested_paths_are_refused_outside_tags_and_locations() -> None:
    with pytest.raises(BadRequest, match="Nested"):
        parse_changes([{"op": "add", "path": "/foo/bar", "value": "x"}], MEDIA_V21)
    assert parse_changes([{"op": "add", "path": "/tags/0", "value": "x"}], MEDIA_V21)[0].path == ["tags", "0"]


# --- read-only and reserved attributes ---------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "status",
        "checksum",
        "size",
        "virtual_size",
        "os_hash_algo",
        "os_hash_value",
        "created_at",
        "updated_at",
        "direct_url",
        "self",
        "file",
        "schema",
    ],
)
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_read_only_attributes_are_forbidden(name: str, op: str) -> None:
    raw: dict[str, object] = {"op": op, "path": f"/{name}"}
    if op != "remove":
        raw["value"] = "x"
    with pytest.raises(Forbidden) as err:
        _apply(_doc(), [raw])
    assert err.value.message == f"Attribute '{name}' is read-only."


@pytest.mark.parametrize("op", ["add", "replace"])
def test_id_is_read_only(op: str) -> None:
    # Glance's RequestDeserializer lists 'id' among _readonly_properties: PATCH /id is a 403.
    with pytest.raises(Forbidden) as err:
        _apply(_doc(), [{"op": op, "path": "/id", "value": "11111111-2222-3333-4444-555555555555"}])
    assert err.value.message == "Attribute 'id' is read-only."


@pytest.mark.parametrize("name", ["location", "deleted", "deleted_at", "os_glance", "os_glance_import_task"])
@pytest.mark.parametrize("op", ["add", "replace", "remove"])
def test_reserved_attributes_are_forbidden(name: str, op: str) -> None:
    raw: dict[str, object] = {"op": op, "path": f"/{name}"}
    if op != "remove":
        raw["value"] = "x"
    with pytest.raises(Forbidden) as err:
        _apply(_doc(**{name: "x"}), [raw])
    assert err.value.message == f"Attribute '{name}' is reserved."


@pytest.mark.parametrize("name", ["status", "checksum", "size"])
def test_check_writable_read_only(name: str) -> None:
    with pytest.raises(Forbidden, match="read-only"):
        check_writable(name)


@pytest.mark.parametrize("name", ["location", "deleted", "deleted_at", "os_glance_foo"])
def test_check_writable_reserved(name: str) -> None:
    with pytest.raises(Forbidden, match="reserved"):
        check_writable(name)


@pytest.mark.parametrize("name", ["name", "foo", "os_distro", "os_hidden", "xos_glance"])
def test_check_writable_accepts_ordinary_names(name: str) -> None:
    check_writable(name)  # must not raise
    doc = _apply(_doc(), [{"op": "add", "path": f"/{name}", "value": True if name == "os_hidden" else "v"}])
    assert doc[name] == (True if name == "os_hidden" else "v")


def test_locations_cannot_be_changed() -> None:
    with pytest.raises(Forbidden, match="locations"):
        _apply(_doc(), [{"op": "replace", "path": "/locations", "value": []}])


# --- add / replace / remove --------------------------------------------------------------------


def test_add_extra_property() -> None:
    doc = _apply(_doc(), [{"op": "add", "path": "/foo", "value": "bar"}])
    assert doc["foo"] == "bar"


def test_add_base_attribute_sets_it() -> None:
    doc = _apply(_doc(), [{"op": "add", "path": "/name", "value": "n"}])
    assert doc["name"] == "n"


def test_add_existing_extra_property_v21_replaces_it() -> None:
    doc = _apply(_doc(foo="old"), [{"op": "add", "path": "/foo", "value": "new"}])
    assert doc["foo"] == "new"


def test_add_existing_extra_property_v20_conflicts() -> None:
    with pytest.raises(Conflict, match="foo"):
        _apply(_doc(foo="old"), [{"add": "/foo", "value": "new"}], MEDIA_V20)


def test_add_new_extra_property_v20() -> None:
    doc = _apply(_doc(), [{"add": "/foo", "value": "new"}], MEDIA_V20)
    assert doc["foo"] == "new"


def test_replace_existing() -> None:
    doc = _apply(_doc(foo="old", name="a"), [
        {"op": "replace", "path": "/foo", "value": "new"},
        {"op": "replace", "path": "/name", "value": "b"},
    ])  # fmt: skip
    assert (doc["foo"], doc["name"]) == ("new", "b")


def test_replace_base_attribute_whose_value_is_null() -> None:
    doc = _apply(_doc(name=None), [{"op": "replace", "path": "/name", "value": "n"}])
    assert doc["name"] == "n"


@pytest.mark.parametrize("media", [MEDIA_V21, MEDIA_V20])
def test_replace_missing_extra_property_conflicts(media: str) -> None:
    raw = {"op": "replace", "path": "/nope", "value": "x"} if media == MEDIA_V21 else {"replace": "/nope", "value": "x"}
    with pytest.raises(Conflict, match="Property nope does not exist"):
        _apply(_doc(), [raw], media)


def test_remove_extra_property() -> None:
    doc = _apply(_doc(foo="x", bar="y"), [{"op": "remove", "path": "/foo"}])
    assert "foo" not in doc
    assert doc["bar"] == "y"


def test_remove_missing_extra_property_conflicts() -> None:
    with pytest.raises(Conflict, match="Property nope does not exist"):
        _apply(_doc(), [{"op": "remove", "path": "/nope"}])


@pytest.mark.parametrize(
    "name", ["name", "visibility", "protected", "os_hidden", "owner", "min_ram", "disk_format", "tags"]
)
def test_removing_a_base_attribute_is_forbidden(name: str) -> None:
    assert name in BASE_PROPERTIES
    with pytest.raises(Forbidden) as err:
        _apply(_doc(), [{"op": "remove", "path": f"/{name}"}])
    assert name in err.value.message
    assert "may not be removed" in err.value.message


def test_changes_apply_in_order() -> None:
    doc = _apply(_doc(), [
        {"op": "add", "path": "/foo", "value": "1"},
        {"op": "replace", "path": "/foo", "value": "2"},
        {"op": "remove", "path": "/foo"},
        {"op": "add", "path": "/foo", "value": "3"},
    ])  # fmt: skip
    assert doc["foo"] == "3"


def test_a_failing_change_leaves_the_input_untouched() -> None:
    original = _doc(foo="x", tags=["a"])
    with pytest.raises(Conflict):
        _apply(original, [
            {"op": "replace", "path": "/foo", "value": "changed"},
            {"op": "add", "path": "/tags/-", "value": "b"},
            {"op": "remove", "path": "/missing"},
        ])  # fmt: skip
    assert original["foo"] == "x"
    assert original["tags"] == ["a"]


def test_apply_does_not_mutate_input_on_success() -> None:
    original = _doc(foo="x", tags=["a"])
    doc = _apply(original, [{"op": "remove", "path": "/foo"}, {"op": "add", "path": "/tags/-", "value": "b"}])
    assert doc["tags"] == ["a", "b"]
    assert original == _doc(foo="x", tags=["a"])


# --- tags ---------------------------------------------------------------------------------------


def test_replace_whole_tag_list() -> None:
    doc = _apply(_doc(tags=["a"]), [{"op": "replace", "path": "/tags", "value": ["x", "y"]}])
    assert doc["tags"] == ["x", "y"]


def test_tag_items() -> None:
    doc = _apply(_doc(tags=["a", "b"]), [
        {"op": "add", "path": "/tags/-", "value": "c"},
        {"op": "add", "path": "/tags/0", "value": "z"},
        {"op": "replace", "path": "/tags/1", "value": "A"},
        {"op": "remove", "path": "/tags/2"},
        {"op": "add", "path": "/tags/3", "value": "end"},
    ])  # fmt: skip
    assert doc["tags"] == ["z", "A", "c", "end"]


@pytest.mark.parametrize(
    "raw",
    [
        {"op": "replace", "path": "/tags/2", "value": "x"},
        {"op": "remove", "path": "/tags/2"},
        {"op": "add", "path": "/tags/3", "value": "x"},
        {"op": "remove", "path": "/tags/-"},
        {"op": "replace", "path": "/tags/x", "value": "x"},
    ],
)
def test_tag_positions_out_of_range(raw: dict[str, object]) -> None:
    with pytest.raises(BadRequest, match="Invalid position"):
        _apply(_doc(tags=["a", "b"]), [raw])
