"""Dashboard forms -> the documents the domain takes: a create body, or a list of JSON-patch changes.

The domain validates both against the image schema; these functions only turn text fields into
values and say plainly what a field is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from glimpse.domain.inputs import INT32_MAX
from glimpse.errors import BadRequest

# Properties the create form offers as fields of their own.
FORM_PROPERTIES = ("description", "kernel_id", "ramdisk_id", "architecture")
EDITABLE = ("name", "visibility", "min_disk", "min_ram")


def _text(form: Mapping[str, Any], key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def _whole(form: Mapping[str, Any], key: str, label: str) -> int:
    text = _text(form, key) or "0"
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > INT32_MAX:
        raise BadRequest(f"{label} must be a whole number from 0 to {INT32_MAX}.")
    return int(text)


def parse_properties(text: str) -> dict[str, str]:
    """`key=value` lines; blank lines are skipped."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise BadRequest(f"Property line {number} must read key=value.")
        found[key.strip()] = value.strip()
    return found


def create_body(form: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": _text(form, "name") or None,
        "disk_format": _text(form, "disk_format") or None,
        "container_format": _text(form, "container_format") or "bare",
        "visibility": _text(form, "visibility") or "shared",
        "protected": form.get("protected") == "on",
        "min_disk": _whole(form, "min_disk", "Minimum disk"),
        "min_ram": _whole(form, "min_ram", "Minimum RAM"),
    }
    if body["disk_format"] is None:
        raise BadRequest("Choose the disk format of the image.")
    extra = parse_properties(_text(form, "properties"))
    for key in FORM_PROPERTIES:
        if _text(form, key):
            extra[key] = _text(form, key)
    clash = sorted(set(extra) & set(body))
    if clash:
        raise BadRequest(f"Set {', '.join(clash)} with the form's own fields, not as properties.")
    return {**body, **extra}


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def edit_changes(form: Mapping[str, Any], current: dict[str, Any], properties: dict[str, str]) -> list[dict[str, Any]]:
    """JSON-patch changes for what the edit form changed: attributes, property values, removals, a new one."""
    changes: list[dict[str, Any]] = []
    wanted: dict[str, Any] = {
        "name": _text(form, "name") or None,
        "visibility": _text(form, "visibility") or current["visibility"],
        "min_disk": _whole(form, "min_disk", "Minimum disk"),
        "min_ram": _whole(form, "min_ram", "Minimum RAM"),
    }
    for key in EDITABLE:
        if wanted[key] != current[key]:
            changes.append({"op": "replace", "path": _pointer(key), "value": wanted[key]})
    for key, value in properties.items():
        if form.get(f"remove:{key}") == "on":
            changes.append({"op": "remove", "path": _pointer(key)})
        elif isinstance(form.get(f"prop:{key}"), str) and form[f"prop:{key}"] != value:
            changes.append({"op": "replace", "path": _pointer(key), "value": form[f"prop:{key}"]})
    new_key = _text(form, "new_key")
    if new_key:
        if new_key in properties or new_key in current:
            raise BadRequest(f"Property {new_key} exists already: change its value in its own row.")
        changes.append({"op": "add", "path": _pointer(new_key), "value": _text(form, "new_value")})
    elif _text(form, "new_value"):
        raise BadRequest("A new property needs a name.")
    return changes
