"""Who may see and who may change an image. An image you may not see is 'not found', never 'forbidden'."""

from __future__ import annotations

from glimpse.auth.context import RequestContext
from glimpse.domain.entities import Image


def is_owner(ctx: RequestContext, image: Image) -> bool:
    return image.owner is not None and image.owner == ctx.project_id


def can_see(ctx: RequestContext, image: Image, member_status: str | None) -> bool:
    """member_status is the caller's membership of the image (None when not a member)."""
    if ctx.is_admin or is_owner(ctx, image):
        return True
    if image.visibility in ("public", "community"):
        return True
    return image.visibility == "shared" and member_status is not None
