"""What the use cases ask of the policy engine, and the targets its rules read.

The domain states which rule guards each operation; auth/policy.py (oslo.policy) answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from glimpse.auth.context import RequestContext
from glimpse.domain.entities import Image


class Authorizer(Protocol):
    """An absent value (an ownerless image, a caller without a project) never satisfies a rule that
    compares it: None is not a project, and two absences are not a match."""

    def check(self, ctx: RequestContext, rule: str, target: Mapping[str, Any]) -> bool: ...

    def enforce(self, ctx: RequestContext, rule: str, target: Mapping[str, Any]) -> None:
        """Raises Forbidden naming the rule."""
        ...


def image_target(image: Image, member_id: str | None = None) -> dict[str, Any]:
    """The fields rules may name: %(project_id)s and %(owner)s are the owner, %(member_id)s the caller's
    project when the image is shared with it, plus every attribute and extra property."""
    target: dict[str, Any] = dict(image.properties)
    target.update(
        id=image.id,
        project_id=image.owner,
        owner=image.owner,
        visibility=image.visibility,
        status=image.status,
        protected=image.protected,
        member_id=member_id,
    )
    return target


def new_image_target(owner: str | None, visibility: str) -> dict[str, Any]:
    return {"project_id": owner, "owner": owner, "visibility": visibility}
