"""Response shapes: an image record as Glance's JSON document."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from glimpse.domain.entities import Image, Member


def isotime(value: datetime | None) -> str | None:
    """2026-01-31T12:00:00Z (times are naive UTC); isoformat is a third of strftime's cost, twice per image."""
    return value.isoformat(timespec="seconds")[:19] + "Z" if value is not None else None


def image_view(
    image: Image, *, direct_url: bool = False, locations: bool = False, stores: list[str] | None = None
) -> dict[str, Any]:
    """stores: the ids of the stores holding the data, shown (when not empty) in multi-store mode."""
    doc: dict[str, Any] = {
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "visibility": image.visibility,
        "protected": image.protected,
        "os_hidden": image.os_hidden,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "owner": image.owner,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "container_format": image.container_format,
        "disk_format": image.disk_format,
        "created_at": isotime(image.created_at),
        "updated_at": isotime(image.updated_at),
        "tags": list(image.tags),
        "min_ram": image.min_ram,
        "min_disk": image.min_disk,
    }
    doc.update({k: v for k, v in image.properties.items() if not k.startswith("os_glance_stage")})
    if direct_url and image.locations:
        doc["direct_url"] = image.locations[0].url
    if locations:
        doc["locations"] = [{"url": loc.url, "metadata": loc.metadata} for loc in image.locations]
    if stores:
        doc["stores"] = ",".join(stores)
    doc["self"] = f"/v2/images/{image.id}"
    doc["file"] = f"/v2/images/{image.id}/file"
    doc["schema"] = "/v2/schemas/image"
    return doc


def member_view(member: Member) -> dict[str, Any]:
    return {
        "created_at": isotime(member.created_at),
        "image_id": member.image_id,
        "member_id": member.member_id,
        "schema": "/v2/schemas/member",
        "status": member.status,
        "updated_at": isotime(member.updated_at),
    }
