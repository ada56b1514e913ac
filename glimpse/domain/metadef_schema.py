"""The metadefs JSON schemas, as Glance serves them at /v2/schemas/metadefs/* and validates bodies with."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema

from glimpse.errors import BadRequest

Schema = dict[str, Any]
TYPES = ["array", "boolean", "integer", "number", "object", "string", None]


def _string(max_length: int | None = None, description: str | None = None) -> Schema:
    out: Schema = {"type": "string"}
    if description:
        out["description"] = description
    if max_length:
        out["maxLength"] = max_length
    return out


def _stamp(description: str) -> Schema:
    return {"type": "string", "readOnly": True, "description": description, "format": "date-time"}


def _definitions(min_items: bool) -> Schema:
    string_array: Schema = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}
    if min_items:
        string_array["minItems"] = 1
    return {
        "positiveInteger": {"type": "integer", "minimum": 0},
        "positiveIntegerDefault0": {"allOf": [{"$ref": "#/definitions/positiveInteger"}, {"default": 0}]},
        "stringArray": string_array,
    }


# What one property definition may say (the body of POST .../properties, minus its name).
PROPERTY_FIELDS: Schema = {
    "name": _string(80),
    "title": {"type": "string"},
    "description": {"type": "string"},
    "operators": {"type": "array", "items": {"type": "string"}},
    "type": {"type": "string", "enum": TYPES},
    "required": {"$ref": "#/definitions/stringArray"},
    "minimum": {"type": "number"},
    "maximum": {"type": "number"},
    "maxLength": {"$ref": "#/definitions/positiveInteger"},
    "minLength": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "pattern": {"type": "string", "format": "regex"},
    "enum": {"type": "array"},
    "readonly": {"type": "boolean"},
    "default": {},
    "items": {
        "type": "object",
        "properties": {"type": {"type": "string", "enum": TYPES}, "enum": {"type": "array"}},
    },
    "maxItems": {"$ref": "#/definitions/positiveInteger"},
    "minItems": {"$ref": "#/definitions/positiveIntegerDefault0"},
    "uniqueItems": {"type": "boolean", "default": False},
    "additionalItems": {"type": "boolean"},
}


def _with_property_map() -> Schema:
    definitions = _definitions(min_items=False)
    definitions["property"] = {
        "type": "object",
        "additionalProperties": {"type": "object", "required": ["title", "type"], "properties": PROPERTY_FIELDS},
    }
    return definitions


def _item(name: str, properties: Schema, required: list[str], definitions: Schema | None = None) -> Schema:
    out: Schema = {"name": name, "properties": properties, "additionalProperties": False, "required": required}
    if definitions is not None:
        out["definitions"] = definitions
    return out


def namespace_schema() -> Schema:
    return _item(
        "namespace",
        {
            "namespace": _string(80, "The unique namespace text."),
            "display_name": _string(80, "The user friendly name for the namespace. Used by UI if available."),
            "description": _string(500, "Provides a user friendly description of the namespace."),
            "visibility": {
                "type": "string",
                "description": "Scope of namespace accessibility.",
                "enum": ["public", "private"],
            },
            "protected": {"type": "boolean", "description": "If true, namespace will not be deletable."},
            "owner": _string(255, "Owner of the namespace."),
            "created_at": _stamp("Date and time of namespace creation"),
            "updated_at": _stamp("Date and time of the last namespace modification"),
            "schema": {"readOnly": True, "type": "string"},
            "self": {"readOnly": True, "type": "string"},
            "resource_type_associations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "prefix": {"type": "string"},
                        "properties_target": {"type": "string"},
                    },
                },
            },
            "properties": {"$ref": "#/definitions/property"},
            "objects": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "required": {"$ref": "#/definitions/stringArray"},
                        "properties": {"$ref": "#/definitions/property"},
                    },
                },
            },
            "tags": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
        },
        ["namespace"],
        _with_property_map(),
    )


def object_schema() -> Schema:
    return _item(
        "object",
        {
            "name": _string(80),
            "description": {"type": "string"},
            "required": {"$ref": "#/definitions/stringArray"},
            "properties": {"$ref": "#/definitions/property"},
            "schema": {"readOnly": True, "type": "string"},
            "self": {"readOnly": True, "type": "string"},
            "created_at": _stamp("Date and time of object creation"),
            "updated_at": _stamp("Date and time of the last object modification"),
        },
        ["name"],
        _with_property_map(),
    )


def property_schema() -> Schema:
    return _item("property", copy.deepcopy(PROPERTY_FIELDS), ["type", "title", "name"], _definitions(min_items=True))


def tag_schema() -> Schema:
    return _item(
        "tag",
        {
            "name": _string(80),
            "created_at": _stamp("Date and time of tag creation"),
            "updated_at": _stamp("Date and time of the last tag modification"),
        },
        ["name"],
    )


def resource_type_schema() -> Schema:
    return _item(
        "resource_type_association",
        {
            "name": _string(
                80,
                "Resource type names should be aligned with Heat resource types whenever possible: "
                "https://docs.openstack.org/heat/latest/template_guide/openstack.html",
            ),
            "prefix": _string(
                80,
                "Specifies the prefix to use for the given resource type. Any properties in the namespace should be "
                "prefixed with this prefix when being applied to the specified resource type. Must include prefix "
                "separator (e.g. a colon :).",
            ),
            "properties_target": _string(
                80,
                "Some resource types allow more than one key / value pair per instance.  For example, Cinder allows "
                "user and image metadata on volumes. Only the image properties metadata is evaluated by Nova "
                "(scheduling or drivers). This property allows a namespace target to remove the ambiguity.",
            ),
            "created_at": _stamp("Date and time of resource type association"),
            "updated_at": _stamp("Date and time of the last resource type association modification"),
        },
        ["name"],
    )


def collection(name: str, item: Schema, items: Schema | None = None) -> Schema:
    """A list document: the items under `name`, with first/next/schema links; definitions move to the top."""
    item = copy.deepcopy(item)
    definitions = item.pop("definitions", None)
    out: Schema = {
        "name": name,
        "properties": {
            name: items if items is not None else {"type": "array", "items": item},
            "first": {"type": "string"},
            "next": {"type": "string"},
            "schema": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }
    if definitions is not None:
        out["definitions"] = definitions
    return out


def properties_collection() -> Schema:
    item = property_schema()
    definitions = item.pop("definitions")
    item["required"] = ["type", "title"]
    out = collection("properties", {}, {"type": "object", "additionalProperties": item})
    out["definitions"] = definitions
    return out


def tags_body_schema() -> Schema:
    """What POST .../tags (several at once) accepts."""
    return collection("tags", tag_schema())


SCHEMAS: dict[str, Schema] = {
    "namespace": namespace_schema(),
    "namespaces": collection("namespaces", namespace_schema()),
    "object": object_schema(),
    "objects": collection("objects", object_schema()),
    "property": property_schema(),
    "properties": properties_collection(),
    "tag": tag_schema(),
    "tags": collection("tags", tag_schema()),
    "resource_type": resource_type_schema(),
    "resource_types": collection("resource_type_associations", resource_type_schema()),
}


def validate(document: Any, schema_name: str) -> None:
    """400 with Glance's wording when the document does not match the named schema."""
    schema = SCHEMAS[schema_name]
    try:
        jsonschema.validate(document, schema)
    except jsonschema.ValidationError as exc:
        raise BadRequest(f"Provided object does not match schema '{schema['name']}': {exc.message}") from None
    except jsonschema.SchemaError as exc:  # a "pattern" that is no regular expression, and the like
        raise BadRequest(f"Provided object does not match schema '{schema['name']}': {exc.message}") from None


def validate_property(document: Any) -> None:
    """One property of an object: a property definition whose name is the key it stands under."""
    schema = copy.deepcopy(SCHEMAS["property"])
    schema["required"] = ["type", "title"]
    try:
        jsonschema.validate(document, schema)
    except (jsonschema.ValidationError, jsonschema.SchemaError) as exc:
        raise BadRequest(f"Provided object does not match schema 'property': {exc.message}") from None
