"""glimpse.domain.schema: the image/member schemas, validation, and the attribute sets derived from them."""

from __future__ import annotations

import jsonschema
import pytest

from glimpse.domain.image import CONTAINER_FORMATS, DISK_FORMATS, STATUSES
from glimpse.domain.schema import (
    BASE_PROPERTIES,
    COLUMNS,
    DEFAULT_SCHEMA,
    IMAGE_SCHEMA,
    IMAGES_SCHEMA,
    MEMBER_SCHEMA,
    MEMBERS_SCHEMA,
    READ_ONLY,
    RESERVED,
    RESERVED_PREFIX,
    schema_document,
)
from glimpse.errors import BadRequest

UUID = "0b1e7b3c-6d1f-4a53-9f3c-2a7b3e1c9d10"


def test_read_only_set() -> None:
    assert {
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
        "stores",
    } <= READ_ONLY
    assert not {"name", "visibility", "protected", "os_hidden", "tags", "min_ram", "min_disk"} & READ_ONLY


def test_read_only_flags_are_in_the_served_schema() -> None:
    props = IMAGE_SCHEMA["properties"]
    assert all(props[name].get("readOnly") is True for name in READ_ONLY)


def test_reserved() -> None:
    assert RESERVED == {"location", "deleted", "deleted_at"}
    assert RESERVED_PREFIX == "os_glance"


def test_columns_exclude_computed_and_list_attributes() -> None:
    assert {"self", "file", "schema", "direct_url", "locations", "stores", "tags"}.isdisjoint(COLUMNS)
    assert {"id", "name", "status", "visibility", "size", "created_at", "owner"} <= COLUMNS
    assert COLUMNS <= set(BASE_PROPERTIES)


def test_image_schema_shape() -> None:
    assert IMAGE_SCHEMA["name"] == "image"
    assert IMAGE_SCHEMA["additionalProperties"] == {"type": "string"}
    assert [link["rel"] for link in IMAGE_SCHEMA["links"]] == ["self", "enclosure", "describedby"]
    assert set(BASE_PROPERTIES) <= set(IMAGE_SCHEMA["properties"])
    # Glance's well-known extra properties are advertised too.
    assert {"kernel_id", "ramdisk_id", "os_distro", "os_version", "architecture", "description"} <= set(
        IMAGE_SCHEMA["properties"]
    )


def test_enums_track_the_domain_tables() -> None:
    props = IMAGE_SCHEMA["properties"]
    assert props["status"]["enum"] == list(STATUSES)
    assert props["container_format"]["enum"] == [None, *CONTAINER_FORMATS]
    assert props["disk_format"]["enum"] == [None, *DISK_FORMATS]
    assert set(props["visibility"]["enum"]) == {"public", "private", "shared", "community"}


def test_collection_and_member_schemas() -> None:
    assert IMAGES_SCHEMA["properties"]["images"]["items"] is IMAGE_SCHEMA
    assert MEMBERS_SCHEMA["properties"]["members"]["items"] is MEMBER_SCHEMA
    assert MEMBER_SCHEMA["properties"]["status"]["enum"] == ["pending", "accepted", "rejected"]


@pytest.mark.parametrize("schema", [IMAGE_SCHEMA, IMAGES_SCHEMA, MEMBER_SCHEMA, MEMBERS_SCHEMA])
def test_served_schemas_are_valid_draft4(schema: dict[str, object]) -> None:
    jsonschema.Draft4Validator.check_schema({k: v for k, v in schema.items() if k != "links"})


def test_schema_document_is_a_deep_copy() -> None:
    doc = schema_document(IMAGE_SCHEMA)
    assert doc == IMAGE_SCHEMA
    doc["properties"]["name"]["maxLength"] = 1
    doc["links"].clear()
    assert IMAGE_SCHEMA["properties"]["name"]["maxLength"] == 255
    assert len(IMAGE_SCHEMA["links"]) == 3


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"name": "x" * 255},
        {"name": None},
        {"id": UUID},
        {"id": UUID.upper()},
        {"visibility": "community"},
        {"protected": True, "os_hidden": False},
        {"container_format": "bare", "disk_format": "qcow2"},
        {"container_format": None, "disk_format": None},
        {"min_ram": 512, "min_disk": 0},
        {"tags": ["a", "b" * 255]},
        {"foo": "bar", "hw_disk_bus": "scsi"},
        {"kernel_id": UUID, "ramdisk_id": None},
        {"cinder_encryption_key_deletion_policy": "do_not_delete"},
    ],
)
def test_valid_documents(doc: dict[str, object]) -> None:
    DEFAULT_SCHEMA.validate(doc)  # must not raise


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        ({"name": "x" * 256}, "name"),
        ({"name": 5}, "name"),
        ({"id": "not-a-uuid"}, "id"),
        ({"visibility": "everyone"}, "visibility"),
        ({"protected": "true"}, "protected"),
        ({"os_hidden": 1}, "os_hidden"),
        ({"container_format": "zip"}, "container_format"),
        ({"disk_format": "qcow3"}, "disk_format"),
        ({"min_ram": "512"}, "min_ram"),
        ({"min_disk": 1.5}, "min_disk"),
        ({"tags": "a,b"}, "tags"),
        ({"tags": ["x" * 256]}, "tags.0"),
        ({"foo": 1}, "foo"),
        ({"foo": None}, "foo"),
        ({"kernel_id": "nope"}, "kernel_id"),
        ({"cinder_encryption_key_deletion_policy": "sometimes"}, "cinder_encryption_key_deletion_policy"),
    ],
)
def test_invalid_documents(doc: dict[str, object], where: str) -> None:
    with pytest.raises(BadRequest) as err:
        DEFAULT_SCHEMA.validate(doc)
    assert err.value.message.startswith("Provided object does not match schema 'image': ")
    assert err.value.message.endswith(f"(at '{where}')")
