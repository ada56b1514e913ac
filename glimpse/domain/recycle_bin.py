"""The recycle bin, as AWS's for images: a deleted image stays restorable by its owner for a retention period.

A delete (the normal one, through ImageService.delete) of an image whose project has a retention period binds
it: the image leaves every list and show as any deleted image does (Glance's delete notification says
pending_delete) but its record, members, tags, properties and data stay. Its owner (or an administrator) lists
the bin, restores an image to the status it had, or purges it at once. Once the period ends the scrubber
(`glimpse scrub`, the delayed-delete machinery) removes the data. The period is the one in force when the image
was deleted (changing it later applies to later deletes, as AWS does); [recycle_bin] retention_period sets the
default, an administrator a project's own.

Quotas count binned data until it is gone, so a restore never needs more bytes; it needs room for one more image
in the project's image count (binned images are not counted there, as they are not listed): a restore into a
full count is refused with 413 and the image stays in the bin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain.authorization import Authorizer, image_target
from glimpse.domain.entities import BinnedImage, Image
from glimpse.domain.inputs import INT32_MAX, check_identifier, check_int, parse_count
from glimpse.domain.notifications import Events
from glimpse.domain.ports import ImageRepository, RecycleBinRepository
from glimpse.domain.quotas import QuotaService
from glimpse.domain.scrubber import Scrubber
from glimpse.errors import BadRequest, NotFound

MAX_RETENTION = INT32_MAX  # seconds: about 68 years


class RecycleBin:
    def __init__(
        self,
        repo: RecycleBinRepository,
        images: ImageRepository,
        policy: Authorizer,
        scrubber: Scrubber,
        quotas: QuotaService,
        default_retention: int,
        events: Events | None = None,
        page_limits: tuple[int, int] = (25, 1000),
    ) -> None:
        """default_retention: seconds ([recycle_bin] retention_period), 0 for no bin; page_limits: the default
        and largest page of a list (limit_param_default, api_limit_max)."""
        self.repo = repo
        self.images = images
        self.policy = policy
        self.scrubber = scrubber
        self.quotas = quotas
        self.default_retention = default_retention
        self.events = events or Events()
        self.page_limits = page_limits

    # --- what a delete asks -----------------------------------------------------------------------------
    def keep_for(self, owner: str | None) -> timedelta | None:
        """How long a deleted image of this owner stays in the bin; None: its delete is not binned."""
        seconds = self.repo.retention(owner) if owner is not None else None
        if seconds is None:
            seconds = self.default_retention
        return timedelta(seconds=seconds) if seconds > 0 else None

    # --- the bin ------------------------------------------------------------------------------------------
    def list(self, ctx: RequestContext, params: Mapping[str, Sequence[str]]) -> tuple[list[BinnedImage], bool]:
        """A page of the caller's project's binned images (an administrator: every project's, or ?owner=)."""
        self.policy.enforce(ctx, "get_binned_images", {"project_id": ctx.project_id})
        owner = _one(params, "owner") if ctx.is_admin else ctx.project_id
        if owner is None and not ctx.is_admin:
            return [], False
        default, largest = self.page_limits
        limit_text = _one(params, "limit")
        limit = min(parse_count(limit_text, "limit param") if limit_text is not None else default, largest)
        found = self.repo.binned(owner, limit + 1, _one(params, "marker"))
        return found[:limit], len(found) > limit

    def get(self, ctx: RequestContext, image_id: str, rule: str = "get_binned_image") -> BinnedImage:
        binned = self.repo.binned_image(image_id)
        if not ctx.is_admin and not ctx.owns(binned.image.owner):
            raise NotFound(f"Image {image_id} is not in the recycle bin.")  # nobody else learns it was there
        self.policy.enforce(ctx, rule, image_target(binned.image))
        return binned

    def restore(self, ctx: RequestContext, image_id: str) -> Image:
        """Back to the status it had, with its members, tags, properties and data."""
        binned = self.get(ctx, image_id, "restore_image")
        owner = binned.image.owner
        max_images = self.quotas.effective(owner).image_count_total if owner is not None else None
        self.scrubber.restore(image_id, from_bin=True, max_images=max_images)
        restored = self.images.get(image_id)
        self.events.image("image.restore", restored)
        return restored

    def purge(self, ctx: RequestContext, image_id: str) -> bool:
        """Out of the bin for good, its data removed now; False when the data waits for the next scrub."""
        self.get(ctx, image_id, "purge_image")
        return self.scrubber.purge(image_id)

    # --- retention ---------------------------------------------------------------------------------------
    def retention(self, ctx: RequestContext, project_id: str) -> dict[str, Any]:
        check_identifier(project_id, "The project id")
        self.policy.enforce(ctx, "get_bin_retention", {"project_id": project_id})
        own = self.repo.retention(project_id)
        return {
            "project_id": project_id,
            "retention_period": self.default_retention if own is None else own,
            "source": "default" if own is None else "project",
        }

    def set_retention(self, ctx: RequestContext, project_id: str, body: Any) -> dict[str, Any]:
        """body: {"retention_period": seconds}, or null to follow the default again."""
        check_identifier(project_id, "The project id")
        self.policy.enforce(ctx, "set_bin_retention", {"project_id": project_id})
        if not isinstance(body, dict) or set(body) != {"retention_period"}:
            raise BadRequest('The body must be {"retention_period": seconds} (null: the default).')
        value = body["retention_period"]
        seconds = None if value is None else check_int(value, "retention_period (seconds)", MAX_RETENTION)
        self.repo.set_retention(project_id, seconds)
        return self.retention(ctx, project_id)

    def all_retention(self, ctx: RequestContext) -> dict[str, int]:
        self.policy.enforce(ctx, "set_bin_retention", {"project_id": ctx.project_id})
        return self.repo.all_retention()


def _one(params: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = params.get(key)
    return values[-1] if values else None
