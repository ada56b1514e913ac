"""The image and member JSON schemas: one source for validation, PATCH checks and /v2/schemas/*.

The real clients download these documents and validate what they send against them, so what
the API accepts and what it serves must never drift apart.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema

from glimpse.domain.image import CONTAINER_FORMATS, DISK_FORMATS, STATUSES, VISIBILITIES
from glimpse.errors import BadRequest

UUID_PATTERN = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"


def _ro(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "readOnly": True}


BASE_PROPERTIES: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
    "name": {"type": ["null", "string"], "description": "Descriptive name for the image", "maxLength": 255},
    "status": _ro({"type": "string", "description": "Status of the image", "enum": list(STATUSES)}),
    "visibility": {"type": "string", "description": "Scope of image accessibility", "enum": list(VISIBILITIES)},
    "protected": {"type": "boolean", "description": "If true, image will not be deletable."},
    "os_hidden": {"type": "boolean", "description": "If true, image will not appear in default image list response."},
    "checksum": _ro({"type": ["null", "string"], "description": "md5 hash of image contents.", "maxLength": 32}),
    "os_hash_algo": _ro(
        {"type": ["null", "string"], "description": "Algorithm to calculate the os_hash_value", "maxLength": 64}
    ),
    "os_hash_value": _ro(
        {
            "type": ["null", "string"],
            "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo",
            "maxLength": 128,
        }
    ),
    "owner": {"type": ["null", "string"], "description": "Owner of the image", "maxLength": 255},
    "size": _ro({"type": ["null", "integer"], "description": "Size of image file in bytes"}),
    "virtual_size": _ro({"type": ["null", "integer"], "description": "Virtual size of image in bytes"}),
    "container_format": {
        "type": ["null", "string"],
        "description": "Format of the container",
        "enum": [None, *CONTAINER_FORMATS],
    },
    "disk_format": {
        "type": ["null", "string"],
        "description": "Format of the disk",
        "enum": [None, *DISK_FORMATS],
    },
    "created_at": _ro({"type": "string", "description": "Date and time of image registration"}),
    "updated_at": _ro({"type": "string", "description": "Date and time of the last image modification"}),
    "tags": {
        "type": "array",
        "description": "List of strings related to the image",
        "items": {"type": "string", "maxLength": 255},
    },
    "direct_url": _ro({"type": "string", "description": "URL to access the image file kept in external store"}),
    "min_ram": {"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
    "min_disk": {"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
    "self": _ro({"type": "string", "description": "An image self url"}),
    "file": _ro({"type": "string", "description": "An image file url"}),
    "stores": _ro(
        {
            "type": "string",
            "description": "Store in which image data resides.  Only present when the operator has enabled "
            "multiple stores.  May be a comma-separated list of store identifiers.",
        }
    ),
    "schema": _ro({"type": "string", "description": "An image schema url"}),
    "locations": {
        "type": "array",
        "description": "A set of URLs to access the image file kept in external store",
        "items": {
            "type": "object",
            "properties": {
                "url": {"type": "string", "maxLength": 255},
                "metadata": {"type": "object"},
                "validation_data": {
                    "type": "object",
                    "description": "Values to be used to populate the corresponding image properties. If the "
                    "image status is not 'queued', values must exactly match those already contained in the image "
                    "properties.",
                    "writeOnly": True,
                    "properties": {
                        "checksum": {"type": "string", "minLength": 32, "maxLength": 32},
                        "os_hash_algo": {"type": "string", "maxLength": 64},
                        "os_hash_value": {"type": "string", "maxLength": 128},
                    },
                    "required": ["os_hash_algo", "os_hash_value"],
                    "additionalProperties": False,
                },
            },
            "required": ["url", "metadata"],
        },
    },
}

# Well-known properties Glance ships in its default schema-image.json. They are stored as
# extra properties but typed here, so clients offer them as options and validate them.
COMMON_PROPERTIES: dict[str, dict[str, Any]] = {
    "kernel_id": {
        "type": ["null", "string"],
        "pattern": UUID_PATTERN,
        "description": "ID of image stored in Glance that should be used as the kernel when booting "
        "an AMI-style image.",
        "is_base": False,
    },
    "ramdisk_id": {
        "type": ["null", "string"],
        "pattern": UUID_PATTERN,
        "description": "ID of image stored in Glance that should be used as the ramdisk when booting "
        "an AMI-style image.",
        "is_base": False,
    },
    "instance_uuid": {
        "type": "string",
        "description": "Metadata which can be used to record which instance this image is associated with. "
        "(Informational only, does not create an instance snapshot.)",
        "is_base": False,
    },
    "architecture": {
        "type": "string",
        "description": "Operating system architecture as specified in "
        "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
        "is_base": False,
    },
    "os_distro": {
        "type": "string",
        "description": "Common name of operating system distribution as specified in "
        "https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html",
        "is_base": False,
    },
    "os_version": {
        "type": "string",
        "description": "Operating system version as specified by the distributor.",
        "is_base": False,
    },
    "description": {
        "type": "string",
        "description": "A human-readable string describing this image.",
        "is_base": False,
    },
    "cinder_encryption_key_id": {
        "type": "string",
        "description": "Identifier in the OpenStack Key Management Service for the encryption key for the "
        "Block Storage Service to use when mounting a volume created from this image",
        "is_base": False,
    },
    "cinder_encryption_key_deletion_policy": {
        "type": "string",
        "enum": ["on_image_deletion", "do_not_delete"],
        "description": "States the condition under which the Image Service will delete the object associated "
        "with the 'cinder_encryption_key_id' image property.  If this property is missing, the Image Service "
        "will take no action",
        "is_base": False,
    },
}

LINKS = [
    {"rel": "self", "href": "{self}"},
    {"rel": "enclosure", "href": "{file}"},
    {"rel": "describedby", "href": "{schema}"},
]

IMAGE_SCHEMA: dict[str, Any] = {
    "name": "image",
    "properties": {**BASE_PROPERTIES, **COMMON_PROPERTIES},
    "additionalProperties": {"type": "string"},
    "links": LINKS,
}

IMAGES_SCHEMA: dict[str, Any] = {
    "name": "images",
    "properties": {
        "images": {"type": "array", "items": IMAGE_SCHEMA},
        "schema": {"type": "string"},
        "first": {"type": "string"},
        "next": {"type": "string"},
    },
    "links": [
        {"rel": "first", "href": "{first}"},
        {"rel": "next", "href": "{next}"},
        {"rel": "describedby", "href": "{schema}"},
    ],
}

MEMBER_SCHEMA: dict[str, Any] = {
    "name": "member",
    "properties": {
        "created_at": {"type": "string", "description": "Date and time of image member creation"},
        "image_id": {"type": "string", "description": "An identifier for the image", "pattern": UUID_PATTERN},
        "member_id": {"type": "string", "description": "An identifier for the image member (tenantId)"},
        "status": {
            "type": "string",
            "description": "The status of this image member",
            "enum": ["pending", "accepted", "rejected"],
        },
        "updated_at": {"type": "string", "description": "Date and time of last modification of image member"},
        "schema": {"readOnly": True, "type": "string"},
    },
}

MEMBERS_SCHEMA: dict[str, Any] = {
    "name": "members",
    "properties": {
        "members": {"type": "array", "items": MEMBER_SCHEMA},
        "schema": {"type": "string"},
    },
    "links": [{"rel": "describedby", "href": "{schema}"}],
}

TASK_SCHEMA: dict[str, Any] = {
    "name": "task",
    "properties": {
        "id": {"type": "string", "description": "An identifier for the task", "pattern": UUID_PATTERN},
        "type": {
            "type": "string",
            "description": "The type of task represented by this content",
            "enum": ["import", "api_image_import", "location_import"],
        },
        "status": {
            "type": "string",
            "description": "The current status of this task",
            "enum": ["pending", "processing", "success", "failure"],
        },
        "input": {"type": ["null", "object"], "description": "The parameters required by task, JSON blob"},
        "result": {"type": ["null", "object"], "description": "The result of current task, JSON blob"},
        "owner": {"type": ["null", "string"], "description": "An identifier for the owner of this task"},
        "message": {
            "type": "string",
            "description": "Human-readable informative message only included when appropriate",
        },
        "image_id": {"type": ["null", "string"], "description": "Image associated with the task"},
        "request_id": {"type": ["null", "string"], "description": "Request ID that started the task"},
        "user_id": {"type": ["null", "string"], "description": "User that started the task"},
        "expires_at": {
            "type": ["null", "string"],
            "description": "Datetime when this resource would be subject to removal",
        },
        "created_at": {"type": "string", "description": "Datetime when this resource was created"},
        "updated_at": {"type": "string", "description": "Datetime when this resource was updated"},
        "self": {"type": "string"},
        "schema": {"type": "string"},
    },
    "links": [{"rel": "self", "href": "{self}"}, {"rel": "describedby", "href": "{schema}"}],
}

TASKS_SCHEMA: dict[str, Any] = {
    "name": "tasks",
    "properties": {
        "tasks": {"type": "array", "items": TASK_SCHEMA},
        "schema": {"type": "string"},
        "first": {"type": "string"},
        "next": {"type": "string"},
    },
    "links": [
        {"rel": "first", "href": "{first}"},
        {"rel": "next", "href": "{next}"},
        {"rel": "describedby", "href": "{schema}"},
    ],
}

READ_ONLY = frozenset(k for k, v in BASE_PROPERTIES.items() if v.get("readOnly"))
# Attributes the database keeps in columns (the rest are extra properties).
COLUMNS = frozenset(BASE_PROPERTIES) - {"self", "file", "schema", "direct_url", "locations", "stores", "tags"}
RESERVED = frozenset({"location", "deleted", "deleted_at"})
RESERVED_PREFIX = "os_glance"


def schema_document(schema: dict[str, Any]) -> dict[str, Any]:
    """The document served at /v2/schemas/*: a deep copy so callers cannot change the original."""
    return copy.deepcopy(schema)


class ImageSchema:
    """The image schemas for the formats the operator allows ([image_format] disk_formats, container_formats)."""

    def __init__(
        self, disk_formats: tuple[str, ...] = DISK_FORMATS, container_formats: tuple[str, ...] = CONTAINER_FORMATS
    ) -> None:
        unknown = (set(disk_formats) - set(DISK_FORMATS)) | (set(container_formats) - set(CONTAINER_FORMATS))
        if unknown:
            raise ValueError(f"Unknown image formats: {', '.join(sorted(unknown))}.")
        self.image = copy.deepcopy(IMAGE_SCHEMA)
        self.image["properties"]["disk_format"]["enum"] = [None, *disk_formats]
        self.image["properties"]["container_format"]["enum"] = [None, *container_formats]
        self.images = copy.deepcopy(IMAGES_SCHEMA)
        self.images["properties"]["images"]["items"] = self.image
        self.documents = {
            "image": self.image,
            "images": self.images,
            "member": MEMBER_SCHEMA,
            "members": MEMBERS_SCHEMA,
            "task": TASK_SCHEMA,
            "tasks": TASKS_SCHEMA,
        }
        self._validator = jsonschema.Draft4Validator(
            {k: v for k, v in self.image.items() if k != "links"}, format_checker=jsonschema.FormatChecker()
        )

    def validate(self, doc: dict[str, Any]) -> None:
        """Validate an image document (or part of one); 400 names the problem."""
        _raise_first(self._validator, doc)


def _raise_first(validator: jsonschema.protocols.Validator, doc: dict[str, Any]) -> None:
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path)
        raise BadRequest(
            f"Provided object does not match schema 'image': {error.message}" + (f" (at '{where}')" if where else "")
        )


DEFAULT_SCHEMA = ImageSchema()
