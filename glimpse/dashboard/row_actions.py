"""What the images table offers on each row, and above it: only what the caller may do.

Policy decides Edit, Update Metadata, Delete and Create Image, as it will when the action is taken.
Create Volume and Launch belong to Cinder and Nova, not to this service: they are offered only when
the user's Keystone catalog has such a service, and as the command that does it, since the dashboard
cannot do it itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from glimpse.dashboard.web import Page
from glimpse.domain.authorization import image_target, new_image_target
from glimpse.domain.entities import Image

VOLUME_SERVICES = frozenset({"volumev3", "block-storage", "volume", "volumev2"})
COMPUTE_SERVICES = frozenset({"compute"})
# Nova's and Cinder's secure-RBAC defaults let a project's members (not its readers) launch and create volumes.
WRITER_ROLES = frozenset({"member", "admin"})
GIB = 1024**3


@dataclass(frozen=True)
class RowActions:
    image: Image
    kind: str  # "image" or "snapshot"
    edit: bool
    delete: bool
    volume_command: str | None
    launch_command: str | None


def image_type(image: Image) -> str:
    return "snapshot" if image.properties.get("image_type") == "snapshot" else "image"


def _quoted(name: str) -> str:
    return "'" + name.replace("'", "'\\''") + "'"


def _volume_command(image: Image) -> str:
    size = max(image.min_disk or 0, math.ceil((image.size or 0) / GIB), 1)
    return f"openstack volume create --image {image.id} --size {size} {_quoted(image.name or image.id)}"


def _launch_command(image: Image) -> str:
    name = _quoted(image.name or "server")
    return f"openstack server create --image {image.id} --flavor FLAVOR --network NETWORK {name}"


def can_create(page: Page) -> bool:
    ctx = page.ctx
    return page.dash.policy.check(ctx, "add_image", new_image_target(ctx.project_id, "shared"))


def row_actions(page: Page, images: list[Image]) -> list[RowActions]:
    ctx = page.ctx
    services = set(page.identity.services) if page.identity is not None else set()
    writer = bool(ctx.roles & WRITER_ROLES)
    volumes = writer and bool(services & VOLUME_SERVICES)
    compute = writer and bool(services & COMPUTE_SERVICES)
    rows = []
    for image in images:
        target = image_target(image)
        usable = image.status == "active"
        rows.append(
            RowActions(
                image=image,
                kind=image_type(image),
                edit=page.dash.policy.check(ctx, "modify_image", target),
                delete=page.dash.policy.check(ctx, "delete_image", target),
                volume_command=_volume_command(image) if volumes and usable else None,
                launch_command=_launch_command(image) if compute and usable else None,
            )
        )
    return rows
