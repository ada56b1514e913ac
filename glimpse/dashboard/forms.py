"""Dashboard forms -> the documents the domain takes: a create body, or a list of JSON-patch changes.

The domain validates both against the image schema; these functions only turn text fields into
values and say plainly what a field is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from glimpse.dashboard.i18n import N_
from glimpse.dashboard.messages import FormError
from glimpse.domain.inputs import INT32_MAX

# Properties the create form offers as fields of their own.
FORM_PROPERTIES = ("description", "kernel_id", "ramdisk_id", "architecture")
MIN_DISK_REFUSED = N_("Minimum disk must be a whole number from 0 to %(most)s.")
MIN_RAM_REFUSED = N_("Minimum RAM must be a whole number from 0 to %(most)s.")


def _text(form: Mapping[str, Any], key: str) -> str:
    value = form.get(key)
    return value.strip() if isinstance(value, str) else ""


def _whole(form: Mapping[str, Any], key: str, label: str) -> int:
    """label: the whole sentence that refuses the field, with %(most)s for the largest value."""
    text = _text(form, key) or "0"
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > INT32_MAX:
        raise FormError(label, most=INT32_MAX)
    return int(text)


def parse_properties(text: str) -> dict[str, str]:
    """`key=value` lines; blank lines are skipped."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise FormError(N_("Property line %(number)s must read key=value."), number=number)
        found[key.strip()] = value.strip()
    return found


def create_body(form: Mapping[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": _text(form, "name") or None,
        "disk_format": _text(form, "disk_format") or None,
        "container_format": _text(form, "container_format") or "bare",
        "visibility": _text(form, "visibility") or "shared",
        "protected": form.get("protected") == "on",
        "min_disk": _whole(form, "min_disk", MIN_DISK_REFUSED),
        "min_ram": _whole(form, "min_ram", MIN_RAM_REFUSED),
    }
    if body["disk_format"] is None:
        raise FormError(N_("Choose the disk format of the image."))
    extra = parse_properties(_text(form, "properties"))
    for key in FORM_PROPERTIES:
        if _text(form, key):
            extra[key] = _text(form, key)
    clash = sorted(set(extra) & set(body))
    if clash:
        raise FormError(N_("Set %(keys)s with the form's own fields, not as properties."), keys=", ".join(clash))
    return {**body, **extra}
