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
