"""One image: every attribute, its members, and the actions on it (each one a domain use case)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from glimpse.dashboard.explain import explain
from glimpse.dashboard.i18n import N_
from glimpse.dashboard.image_edit import COMMON_PROPERTIES, edit_changes
from glimpse.dashboard.messages import IMPORT_STARTED, NOTHING_CHANGED, FormError, message_for
from glimpse.dashboard.web import BASE, Page
from glimpse.domain.authorization import image_target
from glimpse.domain.entities import Image, Member
from glimpse.domain.image import CONTAINER_FORMATS, DISK_FORMATS, VISIBILITIES
from glimpse.domain.patch import MEDIA_V21
from glimpse.errors import GlimpseError, NotFound, status_for

RULES = ("modify_image", "delete_image", "deactivate", "reactivate", "download_image", "upload_image",
         "add_member", "delete_member", "modify_member", "get_image_location")  # fmt: skip
ATTRIBUTES = ("id", "name", "status", "visibility", "protected", "os_hidden", "owner", "size", "virtual_size",
              "disk_format", "container_format", "min_disk", "min_ram", "checksum", "os_hash_algo",
              "os_hash_value", "created_at", "updated_at")  # fmt: skip
TIMESTAMPS = ("created_at", "updated_at")
TABS = {"overview": N_("Overview"), "properties": N_("Properties"), "members": N_("Members"),
        "locations": N_("Locations")}  # fmt: skip
# The tab an action's answer opens on: where its form was.
ACTION_TABS = {"edit": "properties", "share": "members", "unshare": "members", "accept": "members",
               "reject": "members"}  # fmt: skip


def _back(image_id: str, tab: str = "overview") -> str:
    return f"{BASE}/images/{image_id}" + ("" if tab == "overview" else f"?tab={tab}")


def permissions(page: Page, image: Image, mine: Member | None) -> dict[str, bool]:
    """What the caller's role allows on this image, to offer only those controls (the domain checks again)."""
    ctx = page.ctx
    target = image_target(image, ctx.project_id if mine is not None else None)
    allowed = {rule: page.dash.policy.check(ctx, rule, target) for rule in RULES}
    allowed["owner_view"] = ctx.is_admin or ctx.owns(image.owner)
    return allowed


async def show(request: Request) -> Response:
    page = await Page.open(request)
    image_id = request.path_params["image_id"]
    try:
        image = await page.call(page.dash.images.get, image_id)
    except NotFound as exc:
        return await page.redirect(f"{BASE}/images", message_for(exc, page._), error=True)
    members: list[Member] = []
    members_error = None
    try:
        members = await page.call(page.dash.members.list, image_id)
    except GlimpseError as exc:
        members_error = message_for(exc, page._)
    mine = next((m for m in members if m.member_id == page.ctx.project_id and image.owner != m.member_id), None)
    can = await page.checked(permissions, page, image, mine)
    # Property protections: the image comes without what the caller may not read; what it may not change is locked.
    props_can = await page.checked(page.dash.images.property_permissions, page.ctx, image.properties)
    stores = sorted({loc.metadata.get("store", "") for loc in image.locations} - {""})
    tabs = {k: v for k, v in TABS.items() if k != "locations" or stores or can["get_image_location"]}
    tab = request.query_params.get("tab", "overview")
    return await page.render(
        "image.html",
        image=image,
        attributes=[(key, getattr(image, key)) for key in ATTRIBUTES],
        timestamps=TIMESTAMPS,
        stores=stores,
        members=members,
        members_error=members_error,
        mine=mine,
        can=can,
        props_can=props_can,
        common_properties=[key for key in COMMON_PROPERTIES if key not in image.properties],
        visibilities=VISIBILITIES,
        disk_formats=DISK_FORMATS,
        container_formats=CONTAINER_FORMATS,
        web_download=page.dash.web_download,
        tabs=tabs,
        tab=tab if tab in tabs else "overview",
    )


async def confirm_delete(request: Request) -> Response:
    """The delete confirmation; a protected image's offers to unprotect it instead (to those who may)."""
    page = await Page.open(request)
    image = await page.call(page.dash.images.get, request.path_params["image_id"])
    kept = page.dash.bin.keep_for(image.owner) if page.dash.bin is not None else None
    may_unprotect = await page.checked(page.dash.policy.check, page.ctx, "modify_image", image_target(image))
    return await page.render(
        "delete.html", image=image, kept_for=page.speech.duration(kept) if kept else None, may_unprotect=may_unprotect
    )


async def download(request: Request) -> Response:
    page = await Page.open(request)
    image_id = request.path_params["image_id"]
    try:
        result = await page.call(page.dash.images.download, image_id, None)
    except GlimpseError as exc:
        return await page.redirect(_back(image_id), message_for(exc, page._), error=True)
    if not result.image.has_data:
        return await page.redirect(_back(image_id), page._("This image has no data to download."), error=True)
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
    changes = edit_changes(form, image)
    if not changes:
        return page._(NOTHING_CHANGED)
    await _patch(page, image_id, changes)
    return page._("Metadata saved.")


async def retry_import(page: Page, image_id: str, form: FormData) -> str:
    """web-download into a queued image again: after a refused import, or for an image created without data."""
    url = str(form.get("url", "")).strip()
    if not url:
        raise FormError(N_("Give the URL to import the image's data from."))
    if page.dash.imports is None or not page.dash.web_download:
        raise FormError(N_("Importing from a URL is not enabled on this service."))
    await page.call(page.dash.imports.start, image_id, {"method": {"name": "web-download", "uri": url}})
    return page._(IMPORT_STARTED)


async def protect(page: Page, image_id: str, form: FormData) -> str:
    await _patch(page, image_id, [{"op": "replace", "path": "/protected", "value": True}])
    return page._("The image is protected: it cannot be deleted.")


async def unprotect(page: Page, image_id: str, form: FormData) -> str:
    await _patch(page, image_id, [{"op": "replace", "path": "/protected", "value": False}])
    return page._("The image is no longer protected.")


async def deactivate(page: Page, image_id: str, form: FormData) -> str:
    await page.call(page.dash.images.deactivate, image_id)
    return page._("The image is deactivated.")


async def reactivate(page: Page, image_id: str, form: FormData) -> str:
    await page.call(page.dash.images.reactivate, image_id)
    return page._("The image is active again.")


async def delete(page: Page, image_id: str, form: FormData) -> str:
    await page.call(page.dash.images.delete, image_id)
    return page._("The image was deleted.")


async def share(page: Page, image_id: str, form: FormData) -> str:
    member = await page.call(page.dash.members.add, image_id, {"member": form.get("member", "")})
    return page._("Shared with project %(project)s; it must accept the image.", project=member.member_id)


async def unshare(page: Page, image_id: str, form: FormData) -> str:
    member = str(form.get("member", ""))
    await page.call(page.dash.members.delete, image_id, member)
    return page._("Project %(project)s is no longer a member.", project=member)


def _answer(status: str, done: str) -> Action:
    async def answer(page: Page, image_id: str, form: FormData) -> str:
        await page.call(page.dash.members.set_status, image_id, page.ctx.project_id, {"status": status})
        return page._(done)

    return answer


ACTIONS: dict[str, Action] = {
    "edit": edit,
    "import": retry_import,
    "protect": protect,
    "unprotect": unprotect,
    "deactivate": deactivate,
    "reactivate": reactivate,
    "delete": delete,
    "share": share,
    "unshare": unshare,
    "accept": _answer("accepted", N_("You have accepted the image.")),
    "reject": _answer("rejected", N_("You have rejected the image.")),
}


async def act(request: Request) -> Response:
    page = await Page.open(request)
    page.require_login()
    image_id, name = request.path_params["image_id"], request.path_params["action"]
    action = ACTIONS.get(name)
    if action is None:
        return await page.redirect(_back(image_id), page._("Unknown action %(action)s.", action=name), error=True)
    # The upload script asks for JSON, to tell the user whether its clean-up (a delete) really happened.
    wants_json = "application/json" in request.headers.get("accept", "")
    tab = ACTION_TABS.get(name, "overview")
    image: Image | None = None
    try:
        form = await page.form()
        image = await page.call(page.dash.images.get, image_id)  # to name it in messages
        message = await action(page, image_id, form)
    except GlimpseError as exc:
        if wants_json:
            return JSONResponse({"error": message_for(exc, page._)}, status_code=status_for(exc))
        if image is None:
            return await page.redirect(f"{BASE}/images", message_for(exc, page._), error=True)
        return await page.redirect(_back(image_id, tab), explain(exc, image, page._), error=True)
    if wants_json:
        return JSONResponse({"message": message})
    if name == "delete":
        return await page.redirect(f"{BASE}/images", message)
    if form.get("then") == "delete":  # unprotected from the delete page: back there
        return await page.redirect(f"{_back(image_id)}/delete", message)
    return await page.redirect(_back(image_id, tab), message)
