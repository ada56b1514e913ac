"""Loading an image for a caller: hidden images are 'not found'; what policy refuses is 'forbidden'."""

from __future__ import annotations

from glimpse.auth.context import RequestContext
from glimpse.domain import visibility
from glimpse.domain.authorization import Authorizer, image_target
from glimpse.domain.entities import Image
from glimpse.domain.ports import ImageRepository
from glimpse.errors import NotFound


class ImageAccess:
    def __init__(self, repo: ImageRepository, policy: Authorizer) -> None:
        self.repo = repo
        self.policy = policy

    def load(self, ctx: RequestContext, image_id: str, rule: str = "get_image") -> Image:
        """The image if the caller may see it and `rule` allows the operation."""
        image = self.repo.get(image_id)
        member_status = None
        if not ctx.is_admin and image.visibility == "shared" and ctx.project_id and image.owner != ctx.project_id:
            member_status = self.repo.member_status(image.id, ctx.project_id)
        if not visibility.can_see(ctx, image, member_status):
            raise NotFound(f"No image found with ID {image_id}")
        target = image_target(image, ctx.project_id if member_status is not None else None)
        if not self.policy.check(ctx, "get_image", target):
            raise NotFound(f"No image found with ID {image_id}")
        if rule != "get_image":
            self.policy.enforce(ctx, rule, target)  # the caller sees the image, so a refusal is a 403
        return image
