"""The detail page's edit form -> JSON-patch changes: every attribute a user may change, tags, and properties.

Only what the form changed becomes an operation, so a refused change never rides along with an allowed one
by accident, and a form posted from an older page does not undo what others changed meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from glimpse.dashboard.forms import MIN_DISK_REFUSED, MIN_RAM_REFUSED, _text, _whole
from glimpse.dashboard.i18n import N_
from glimpse.dashboard.messages import FormError
from glimpse.domain.entities import Image

# Properties most images carry (Nova's scheduler reads them): offered as empty rows until set.
COMMON_PROPERTIES = ("architecture", "os_distro", "os_version")
# Settable while the image is queued only: its data, once there, is read as these formats.
FORMATS = ("disk_format", "container_format")
MAX_TAG_LENGTH = 255
ATTRIBUTES = frozenset(f.name for f in fields(Image))


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def _flag(form: Mapping[str, Any], key: str) -> bool:
    return form.get(key) == "on"


def attribute_changes(form: Mapping[str, Any], image: Image) -> dict[str, Any]:
    """The attributes the form sets to a new value. A checkbox the form lacks is unticked (browsers omit those)."""
    wanted: dict[str, Any] = {
        "name": _text(form, "name") or None,
        "visibility": _text(form, "visibility") or image.visibility,
        "min_disk": _whole(form, "min_disk", MIN_DISK_REFUSED),
        "min_ram": _whole(form, "min_ram", MIN_RAM_REFUSED),
        "protected": _flag(form, "protected"),
        "os_hidden": _flag(form, "os_hidden"),
    }
    if image.status == "queued":
        wanted.update({key: _text(form, key) or getattr(image, key) for key in FORMATS})
    return {key: value for key, value in wanted.items() if value != getattr(image, key)}


def wanted_tags(form: Mapping[str, Any], tags: list[str]) -> list[str]:
    """The tags kept (no remove box ticked) and the comma-separated new ones, each once, in order."""
    kept = [tag for tag in tags if not _flag(form, f"remove_tag:{tag}")]
    added = [tag.strip() for tag in _text(form, "add_tags").split(",") if tag.strip()]
    for tag in added:
        if len(tag) > MAX_TAG_LENGTH:
            raise FormError(N_("A tag may be at most %(most)s characters long."), most=MAX_TAG_LENGTH)
    return list(dict.fromkeys(kept + added))


def property_changes(form: Mapping[str, Any], properties: dict[str, str]) -> list[dict[str, Any]]:
    """Changed values, removals, the common properties filled in, and one new property."""
    changes: list[dict[str, Any]] = []
    for key, value in properties.items():
        if _flag(form, f"remove:{key}"):
            changes.append({"op": "remove", "path": _pointer(key)})
        elif isinstance(form.get(f"prop:{key}"), str) and form[f"prop:{key}"] != value:
            changes.append({"op": "replace", "path": _pointer(key), "value": form[f"prop:{key}"]})
    for key in COMMON_PROPERTIES:
        if key not in properties and _text(form, f"prop:{key}"):
            changes.append({"op": "add", "path": _pointer(key), "value": _text(form, f"prop:{key}")})
    new_key = _text(form, "new_key")
    if new_key:
        if new_key in properties or new_key in ATTRIBUTES:
            raise FormError(N_("Property %(key)s exists already: change its value in its own row."), key=new_key)
        changes.append({"op": "add", "path": _pointer(new_key), "value": _text(form, "new_value")})
    elif _text(form, "new_value"):
        raise FormError(N_("A new property needs a name."))
    return changes


def edit_changes(form: Mapping[str, Any], image: Image) -> list[dict[str, Any]]:
    changes = [{"op": "replace", "path": _pointer(k), "value": v} for k, v in attribute_changes(form, image).items()]
    tags = wanted_tags(form, image.tags)
    if tags != image.tags:
        changes.append({"op": "replace", "path": "/tags", "value": tags})
    return changes + property_changes(form, image.properties)
