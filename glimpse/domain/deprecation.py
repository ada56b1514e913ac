"""Deprecation of images, as GCE's deprecation states and AWS's deprecation times: deprecated, obsolete, scheduled.

The state lives in three extra properties the owner (whoever may update the image) sets by a normal PATCH:
deprecate_at and obsolete_at (ISO 8601 times, stored in UTC to the second) and replacement_image (the image to use
instead). The state itself, deprecation_status, is computed whenever the image is read, so a scheduled state takes
effect on time without any job: active before deprecate_at, deprecated from then, obsolete from obsolete_at. It is
shown as a property beside the others (so the Glance clients display it), and writing it is a shortcut: deprecated
or obsolete "now", active (or removing it) to undo every part.

An obsolete image's data is refused to non-administrators (new boots fail, the message names the replacement);
families skip deprecated and obsolete images; GET /v2/images?deprecation_status=active leaves them out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from glimpse.domain.entities import Image
from glimpse.errors import BadRequest, Forbidden, NotFound

STATUS = "deprecation_status"
DEPRECATE_AT = "deprecate_at"
OBSOLETE_AT = "obsolete_at"
REPLACEMENT = "replacement_image"
TIMES = (DEPRECATE_AT, OBSOLETE_AT)
STORED = (DEPRECATE_AT, OBSOLETE_AT, REPLACEMENT)
STATES = ("active", "deprecated", "obsolete")
FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # sorts as text in every database, as the list filter compares it


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def stamp(value: datetime) -> str:
    return value.strftime(FORMAT)


def parse_time(value: object, name: str) -> datetime:
    """An ISO 8601 time (a time zone or Z, else UTC) as naive UTC; 400 otherwise."""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be an ISO 8601 time such as 2030-01-31T12:00:00Z.")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        raise BadRequest(f"{name} must be an ISO 8601 time such as 2030-01-31T12:00:00Z, not {value!r}.") from None
    if not 1970 <= parsed.year <= 9999:
        raise BadRequest(f"{name} must be a time between the years 1970 and 9999.")
    return parsed


def state(properties: Mapping[str, str], at: datetime) -> str | None:
    """The deprecation state at `at`; None for an image with no deprecation set at all."""
    if properties.keys().isdisjoint(TIMES):  # in C: this runs for every image of every page
        return None
    now = stamp(at)
    if properties.get(OBSOLETE_AT, "~") <= now:
        return "obsolete"
    if properties.get(DEPRECATE_AT, "~") <= now:
        return "deprecated"
    return "active"


def shown(image: Image, at: datetime) -> Image:
    """The image as callers see it: with its computed deprecation_status when it has any deprecation set."""
    current = state(image.properties, at)
    if current is None and STATUS not in image.properties:
        return image  # nearly every image: nothing to add or hide, so no copy (most of a list page's own work)
    properties = {k: v for k, v in image.properties.items() if k != STATUS}
    if current is not None:
        properties[STATUS] = current
    return dataclasses.replace(image, properties=properties)


def normalized(
    image_id: str,
    old: Mapping[str, str],
    new: dict[str, str],
    at: datetime,
    find: Callable[[str], object],
) -> dict[str, str]:
    """The properties to store once a caller changed `old` into `new` (new holds the deprecation_status the caller
    saw, perhaps changed): times checked and stored in UTC, a written status turned into times, the replacement
    checked with find (it raises NotFound for an image the caller cannot see)."""
    props = dict(new)
    written = props.pop(STATUS, None)
    for key in TIMES:
        if key in props:
            props[key] = stamp(parse_time(props[key], key))
    if written != state(old, at):
        _apply_status(props, written, at)
    if DEPRECATE_AT in props and OBSOLETE_AT in props and props[OBSOLETE_AT] < props[DEPRECATE_AT]:
        raise BadRequest(f"{OBSOLETE_AT} ({props[OBSOLETE_AT]}) must not come before {DEPRECATE_AT}.")
    replacement = props.get(REPLACEMENT)
    if replacement is not None and replacement != old.get(REPLACEMENT):
        if replacement.lower() == image_id.lower():
            raise BadRequest("An image cannot be its own replacement.")
        try:
            find(replacement)
        except NotFound:
            raise BadRequest(f"Replacement image {replacement} does not exist.") from None
    return props


def _apply_status(props: dict[str, str], written: str | None, at: datetime) -> None:
    now = stamp(at)
    if written in (None, "active"):
        for key in STORED:
            props.pop(key, None)
    elif written == "deprecated":
        if props.get(DEPRECATE_AT, "~") > now:
            props[DEPRECATE_AT] = now
        if props.get(OBSOLETE_AT, "~") <= now:
            props.pop(OBSOLETE_AT, None)
    elif written == "obsolete":
        for key in TIMES:
            if props.get(key, "~") > now:
                props[key] = now
    else:
        raise BadRequest(f"{STATUS} must be one of {', '.join(STATES)}, not {written!r}.")


def check_download(image: Image, at: datetime) -> None:
    """An obsolete image's data goes to administrators only: a new boot of it fails, naming what to use."""
    if state(image.properties, at) != "obsolete":
        return
    replacement = image.properties.get(REPLACEMENT)
    instead = f" Use its replacement, image {replacement}." if replacement else ""
    raise Forbidden(f"Image {image.id} is obsolete: its data is no longer served for new boots.{instead}")


def parse_filter(value: str) -> tuple[str, ...]:
    """GET /v2/images?deprecation_status=active, or in:active,deprecated."""
    wanted = tuple(v.strip() for v in value[3:].split(",")) if value.startswith("in:") else (value,)
    for one in wanted:
        if one not in STATES:
            raise BadRequest(f"Invalid {STATUS} value: {one}. Use one of {', '.join(STATES)} (or in:a,b).")
    return wanted
