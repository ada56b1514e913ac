"""One image: every attribute, its members, and the actions on it (each one a domain use case)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.dashboard import forms
from glimpse.dashboard.web import BASE, Page
from glimpse.domain.authorization import image_target
from glimpse.domain.entities import Image, Member
from glimpse.domain.image import VISIBILITIES
from glimpse.domain.patch import MEDIA_V21
from glimpse.errors import GlimpseError, NotFound, status_for

RULES = ("modify_image", "delete_image", "deactivate", "reactivate", "download_image", "add_member",
         "delete_member", "modify_member", "get_image_location")  # fmt: skip
ATTRIBUTES = ("id", "name", "status", "visibility", "protected", "os_hidden", "owner", "size", "virtual_size",
              "disk_format", "container_format", "min_disk", "min_ram", "checksum", "os_hash_algo",
              "os_hash_value", "created_at", "updated_at")  # fmt: skip


def _back(image_id: str) -> str:
    return f"{BASE}/images/{image_id}"


def permissions(page: Page, image: Image, mine: Member | None) -> dict[str, bool]:
    """What the caller's role allows on this image, to offer only those controls (the domain checks again)."""
    ctx = page.ctx
    target = image_target(image, ctx.project_id if mine is not None else None)
    allowed = {rule: page.dash.policy.check(ctx, rule, target) for rule in RULES}
    allowed["owner_view"] = ctx.is_admin or ctx.owns(image.owner)
    return allowed


async def show(request: Request) -> Response:
    page = Page(request)
    image_id = request.path_params["image_id"]
    try:
        image = await page.call(page.dash.images.get, image_id)
    except NotFound as exc:
        return page.redirect(f"{BASE}/images", exc.message, error=True)
    members: list[Member] = []
    members_error = None
    try:
        members = await page.call(page.dash.members.list, image_id)
    except GlimpseError as exc:
        members_error = exc.message
    mine = next((m for m in members if m.member_id == page.ctx.project_id and image.owner != m.member_id), None)
    can = permissions(page, image, mine)
    # Property protections: the image comes without what the caller may not read; what it may not change is locked.
    props_can = page.dash.images.property_permissions(page.ctx, image.properties)
    return page.render(
        "image.html",
        image=image,
        attributes=[(key, getattr(image, key)) for key in ATTRIBUTES],
        stores=sorted({loc.metadata.get("store", "") for loc in image.locations} - {""}),
        members=members,
        members_error=members_error,
        mine=mine,
        can=can,
        props_can=props_can,
        visibilities=VISIBILITIES,
    )


async def confirm_delete(request: Request) -> Response:
    page = Page(request)
    image = await page.call(page.dash.images.get, request.path_params["image_id"])
    kept = page.dash.bin.keep_for(image.owner) if page.dash.bin is not None else None
    return page.render("delete.html", image=image, kept_for=str(kept) if kept else None)


async def download(request: Request) -> Response:
    page = Page(request)
    image_id = request.path_params["image_id"]
    try:
        result = await page.call(page.dash.images.download, image_id, None)
    except GlimpseError as exc:
        return page.redirect(_back(image_id), exc.message, error=True)
    if not result.image.has_data:
        return page.redirect(_back(image_id), "This image has no data to download.", error=True)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", result.image.name or image_id)
    headers = {
        "Content-Length": str(result.length),
        "Content-Disposition": f'attachment; filename="{stem}.{result.image.disk_format or "img"}"',
    }
    return page.dash.transfers.response(result.chunks, 200, headers)


# --- actions: each returns the message shown after it ---------------------------------------------------
Action = Callable[[Page, str, FormData], Awaitable[str]]


async def _patch(page: Page, image_id: str, changes: list[dict[str, Any]]) -> None:
    await page.call(page.dash.images.update, image_id, changes, MEDIA_V21)


async def edit(page: Page, image_id: str, form: FormData) -> str:
    image = await page.call(page.dash.images.get, image_id)
    current = {k: getattr(image, k) for k in forms.EDITABLE}
    changes = forms.edit_changes(form, current, image.properties)
    if not changes:
        return "Nothing was changed."
    await _patch(page, image_id, changes)
    return "Metadata saved."


async def protect(page: Page, image_id: str, form: FormData) -> str:
    await _patch(page, image_id, [{"op": "replace", "path": "/protected", "value": True}])
    return "The image is protected: it cannot be deleted."


async def unprotect(page: Page, image_id: str, form: FormData) -> str:
    await _patch(page, image_id, [{"op": "replace", "path": "/protected", "value": False}])
    return "The image is no longer protected."


async def deactivate(page: Page, image_id: str, form: FormData) -> str:
    await page.call(page.dash.images.deactivate, image_id)
    return "The image is deactivated."


async def reactivate(page: Page, image_id: str, form: FormData) -> str:
    await page.call(page.dash.images.reactivate, image_id)
    return "The image is active again."


async def delete(page: Page, image_id: str, form: FormData) -> str:
    await page.call(page.dash.images.delete, image_id)
    return "The image was deleted."


async def share(page: Page, image_id: str, form: FormData) -> str:
    member = await page.call(page.dash.members.add, image_id, {"member": form.get("member", "")})
    return f"Shared with project {member.member_id}; it must accept the image."


async def unshare(page: Page, image_id: str, form: FormData) -> str:
    member = str(form.get("member", ""))
    await page.call(page.dash.members.delete, image_id, member)
    return f"Project {member} is no longer a member."


def _answer(status: str) -> Action:
    async def answer(page: Page, image_id: str, form: FormData) -> str:
        await page.call(page.dash.members.set_status, image_id, page.ctx.project_id, {"status": status})
        return f"You have {status} the image."

    return answer


ACTIONS: dict[str, Action] = {
    "edit": edit,
    "protect": protect,
    "unprotect": unprotect,
    "deactivate": deactivate,
    "reactivate": reactivate,
    "delete": delete,
    "share": share,
    "unshare": unshare,
    "accept": _answer("accepted"),
    "reject": _answer("rejected"),
}


async def act(request: Request) -> Response:
    page = Page(request)
    page.require_login()
    image_id, name = request.path_params["image_id"], request.path_params["action"]
    action = ACTIONS.get(name)
    if action is None:
        return page.redirect(_back(image_id), f"Unknown action {name}.", error=True)
    # The upload script asks for JSON, to tell the user whether its clean-up (a delete) really happened.
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        form = await page.form()
        message = await action(page, image_id, form)
    except GlimpseError as exc:
        if wants_json:
            return JSONResponse({"error": exc.message}, status_code=status_for(exc))
        return page.redirect(_back(image_id), exc.message, error=True)
    if wants_json:
        return JSONResponse({"message": message})
    return page.redirect(f"{BASE}/images" if name == "delete" else _back(image_id), message)
