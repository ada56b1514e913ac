"""Sharing an image with other projects: the owner adds members, each member accepts or rejects.

A member may read and download the image whatever its status; the status only decides whether the
image shows in the member's default list (accepted) or not (pending, rejected).
"""

from __future__ import annotations

from typing import Any

from glimpse.auth.context import RequestContext
from glimpse.domain import audit
from glimpse.domain.access import ImageAccess
from glimpse.domain.audit_entries import MEMBER
from glimpse.domain.authorization import Authorizer
from glimpse.domain.entities import Member
from glimpse.domain.inputs import check_text
from glimpse.domain.notifications import Events
from glimpse.domain.ports import ImageRepository
from glimpse.errors import BadRequest, Forbidden, NotFound

STATUSES = ("pending", "accepted", "rejected")


class MemberService:
    def __init__(
        self, repo: ImageRepository, policy: Authorizer, member_quota: int, events: Events | None = None
    ) -> None:
        self.events = events or Events()
        self.repo = repo
        self.policy = policy
        self.access = ImageAccess(repo, policy)
        self.member_quota = member_quota

    def _target(self, image_id: str, owner: str | None, member_id: str | None) -> dict[str, Any]:
        return {"id": image_id, "project_id": owner, "owner": owner, "member_id": member_id}

    def list(self, ctx: RequestContext, image_id: str) -> list[Member]:
        image = self.access.load(ctx, image_id)
        self.policy.enforce(ctx, "get_members", self._target(image.id, image.owner, ctx.project_id))
        members = self.repo.members(image.id)
        if ctx.is_admin or ctx.owns(image.owner):
            return members
        return [m for m in members if m.member_id == ctx.project_id]  # a member sees only itself

    def get(self, ctx: RequestContext, image_id: str, member_id: str) -> Member:
        check_text(member_id, "The member id")
        image = self.access.load(ctx, image_id)
        self.policy.enforce(ctx, "get_member", self._target(image.id, image.owner, member_id))
        if not (ctx.is_admin or ctx.owns(image.owner) or member_id == ctx.project_id):
            raise NotFound(f"{member_id} is not a member of image {image_id}")
        return self.repo.member(image.id, member_id)

    def add(self, ctx: RequestContext, image_id: str, body: Any) -> Member:
        if not isinstance(body, dict) or not isinstance(body.get("member"), str) or not body["member"].strip():
            raise BadRequest('Request body must be {"member": "<project id>"}.')
        member_id = check_text(body["member"].strip(), "The member id")
        if len(member_id) > 255:
            raise BadRequest("Member id is longer than 255 characters.")
        image = self.access.load(ctx, image_id)
        self.policy.enforce(ctx, "add_member", self._target(image.id, image.owner, member_id))
        if image.visibility != "shared":
            raise Forbidden(f"Only shared images have members; image {image_id} is {image.visibility}.")
        with audit.change(ctx, "image.member.create", MEMBER, image.id, image.owner, member=[None, member_id]):
            member = self.repo.add_member(image.id, member_id, self.member_quota)
        self.events.member("image.member.create", member)
        return member

    def set_status(self, ctx: RequestContext, image_id: str, member_id: str, body: Any) -> Member:
        status = body.get("status") if isinstance(body, dict) else None
        if status not in STATUSES:
            raise BadRequest(f"Invalid status: {status}. Valid values are {', '.join(STATUSES)}.")
        check_text(member_id, "The member id")
        image = self.access.load(ctx, image_id)
        current = self.repo.member(image.id, member_id)  # 404 before 403 for a project that is no member
        self.policy.enforce(ctx, "modify_member", self._target(image.id, image.owner, member_id))
        with audit.change(
            ctx, "image.member.update", MEMBER, image.id, image.owner,
            member=[member_id, member_id], status=[current.status, status],
        ):  # fmt: skip
            member = self.repo.set_member_status(image.id, member_id, status)
        self.events.member("image.member.update", member)
        return member

    def delete(self, ctx: RequestContext, image_id: str, member_id: str) -> None:
        check_text(member_id, "The member id")
        image = self.access.load(ctx, image_id)
        self.policy.enforce(ctx, "delete_member", self._target(image.id, image.owner, member_id))
        gone = self.repo.member(image.id, member_id) if self.events.wants("image.member.delete") else None
        with audit.change(ctx, "image.member.delete", MEMBER, image.id, image.owner, member=[member_id, None]):
            self.repo.delete_member(image.id, member_id)
        if gone is not None:
            self.events.member("image.member.delete", gone, deleted=True)
