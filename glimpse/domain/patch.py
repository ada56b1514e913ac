"""JSON-patch for images (media types openstack-images-v2.1-json-patch and the older v2.0 form).

Only add, remove and replace exist; every path is one level deep except inside /tags and
/locations; read-only, reserved and os_glance* attributes are refused as Glance refuses them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from glimpse.domain.schema import BASE_PROPERTIES, READ_ONLY, RESERVED, RESERVED_PREFIX
from glimpse.errors import BadRequest, Conflict, Forbidden

MEDIA_V21 = "application/openstack-images-v2.1-json-patch"
MEDIA_V20 = "application/openstack-images-v2.0-json-patch"
MEDIA_TYPES = (MEDIA_V21, MEDIA_V20)
OPS = ("add", "remove", "replace")
_POINTER = re.compile(r"^(/([^/~]|~[01])+)+$")


@dataclass(frozen=True)
class Change:
    op: str
    path: list[str]
    value: Any = None


def _decode_pointer(pointer: Any) -> list[str]:
    if not isinstance(pointer, str) or not _POINTER.match(pointer):
        raise BadRequest(f"Invalid JSON pointer for this resource: '{pointer}'")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def parse_changes(body: Any, media_type: str) -> list[Change]:
    """Turn the request body into checked changes; 400 on anything malformed."""
    if not isinstance(body, list):
        raise BadRequest("Request body must be a JSON array of operation objects.")
    changes = []
    for raw in body:
        if not isinstance(raw, dict):
            raise BadRequest("Operations must be JSON objects.")
        if media_type == MEDIA_V20:
            ops = [op for op in OPS if op in raw]
            if len(ops) != 1:
                raise BadRequest(
                    'Operation objects must contain exactly one member named "add", "remove", or "replace".'
                )
            op, pointer = ops[0], raw[ops[0]]
        else:
            named, pointer = raw.get("op"), raw.get("path")
            if named is None:
                raise BadRequest("Unable to find 'op' in JSON Schema change")
            if not isinstance(named, str) or named not in OPS:
                raise BadRequest(f"Invalid operation: `{named}`: Valid operations are add, remove, replace.")
            op = named
            if pointer is None:
                raise BadRequest("Unable to find 'path' in JSON Schema change")
        path = _decode_pointer(pointer)
        if op != "remove" and "value" not in raw:
            raise BadRequest(f'Operation "{op}" requires a member named "value".')
        if len(path) > 1 and path[0] not in ("tags", "locations"):
            raise BadRequest("Nested paths are not allowed")
        changes.append(Change(op=op, path=path, value=raw.get("value")))
    return changes


def check_writable(name: str) -> None:
    if name in READ_ONLY or name == "id":
        raise Forbidden(f"Attribute '{name}' is read-only.")
    if name in RESERVED or name.startswith(RESERVED_PREFIX):
        raise Forbidden(f"Attribute '{name}' is reserved.")


# Told (name, operation) before each change of an extra property: "create", "update" or "delete"; raises to refuse.
Guard = Callable[[str, str], None]


def _allow_all(name: str, op: str) -> None:
    return None


def apply_changes(
    doc: dict[str, Any], changes: list[Change], media_type: str, guard: Guard = _allow_all
) -> dict[str, Any]:
    """Apply the changes to a document of the image's writable attributes and extra properties."""
    doc = {**doc, "tags": list(doc.get("tags", []))}
    for change in changes:
        name = change.path[0]
        check_writable(name)
        if name == "locations":
            raise Forbidden("Changing image locations is not allowed: show_multiple_locations is off.")
        if name == "tags" and len(change.path) == 2:
            _apply_tag_item(doc["tags"], change)
            continue
        exists = name in doc and (name in BASE_PROPERTIES or doc[name] is not None)
        extra = name not in BASE_PROPERTIES
        if change.op == "add":
            if exists and media_type == MEDIA_V20 and extra:
                raise Conflict(f"Property {name} already present.")
            if extra:
                guard(name, "update" if exists else "create")
            doc[name] = change.value
        elif change.op == "replace":
            if not exists:
                raise Conflict(f"Property {name} does not exist.")
            if extra:
                guard(name, "update")
            doc[name] = change.value
        else:
            if not extra:
                raise Forbidden(f"Property {name} may not be removed.")
            if not exists:
                raise Conflict(f"Property {name} does not exist.")
            guard(name, "delete")
            del doc[name]
    return doc


def _apply_tag_item(tags: list[str], change: Change) -> None:
    index = change.path[1]
    if index == "-" and change.op == "add":
        tags.append(change.value)
        return
    # ASCII digits only: str.isdigit() also takes '²', which int() then refuses.
    last = len(tags) - (0 if change.op == "add" else 1)
    if not index.isascii() or not index.isdigit() or len(index) > 9 or int(index) > last:
        raise BadRequest(f"Invalid position '{index[:32]}' in /tags.")
    i = int(index)
    if change.op == "add":
        tags.insert(i, change.value)
    elif change.op == "replace":
        tags[i] = change.value
    else:
        del tags[i]
