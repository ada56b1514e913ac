"""Image families, as GCE's: images sharing the property os_family (say debian-12), one build after another.

The family's latest image is its newest (created_at) active image that is neither deprecated nor obsolete and that
the caller can see, found through the image list itself: the same visibility, membership, os_hidden and property
protection rules apply. os_family follows Glance's os_* names for what describes the operating system
(os_distro, os_version); Glance reserves only os_glance_*.
"""

from __future__ import annotations

from dataclasses import dataclass

from glimpse.auth.context import RequestContext
from glimpse.domain import deprecation, listing
from glimpse.domain.entities import Image
from glimpse.domain.inputs import check_text
from glimpse.domain.service import ImageService
from glimpse.errors import NotFound

FAMILY = "os_family"


@dataclass(frozen=True)
class Family:
    name: str
    latest: Image | None  # None: every image of the family is deprecated, obsolete or not active


class Families:
    def __init__(self, images: ImageService) -> None:
        self.images = images

    def latest(self, ctx: RequestContext, family: str) -> Image:
        check_text(family, "The family")
        found = self._latest(ctx, family)
        if found is None:
            raise NotFound(f"Family {family} has no active image that is not deprecated.")
        return found

    def _latest(self, ctx: RequestContext, family: str) -> Image | None:
        params = {FAMILY: [family], "status": ["active"], deprecation.STATUS: ["active"], "sort": ["created_at:desc"],
                  "limit": ["1"]}  # fmt: skip
        found, _ = self.images.list(ctx, params)
        return found[0] if found else None

    def list(self, ctx: RequestContext, marker: str | None = None, limit: int | None = None) -> list[Family]:
        """The families of the images the caller can see, by name, each with its latest image."""
        service = self.images
        service.policy.enforce(ctx, "get_images", {"project_id": ctx.project_id})
        if not service.protections.allows(ctx, FAMILY, "read"):
            return []
        q = listing.parse_query({}, ctx, default_limit=1, max_limit=1)
        wanted = min(limit or service.limits.limit_param_default, service.limits.api_limit_max)
        names = service.repo.property_values(q, FAMILY, marker, wanted)
        return [Family(name, self._latest(ctx, name)) for name in names]
