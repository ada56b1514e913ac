"""The recycle bin page (list, restore, purge) and the families page (each family's latest image)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from glimpse.dashboard.messages import message_for
from glimpse.dashboard.web import BASE, Page
from glimpse.domain.entities import BinnedImage
from glimpse.domain.families import Families, Family
from glimpse.domain.recycle_bin import RecycleBin
from glimpse.errors import GlimpseError, NotFound


def _bin(page: Page) -> RecycleBin:
    if page.dash.bin is None:
        raise NotFound(page._("This dashboard has no recycle bin."))
    return page.dash.bin


def _families(page: Page) -> Families:
    if page.dash.families is None:
        raise NotFound(page._("This dashboard shows no families."))
    return page.dash.families


async def bin_index(request: Request) -> Response:
    page = await Page.open(request)
    found: list[BinnedImage] = []
    error = None
    marker = request.query_params.get("marker")
    try:
        params = {"marker": [marker]} if marker else {}
        found, more = await page.call(_bin(page).list, params)
    except GlimpseError as exc:
        error, more = message_for(exc, page._), False
    next_url = f"{BASE}/bin?marker={found[-1].image.id}" if more and found else None
    return await page.render("bin.html", binned=found, list_error=error, next_url=next_url)


async def bin_act(request: Request) -> Response:
    page = await Page.open(request)
    page.require_login()
    image_id, action = request.path_params["image_id"], request.path_params["action"]
    await page.form()  # the CSRF token
    try:
        if action == "restore":
            image = await page.call(_bin(page).restore, image_id)
            restored = page._("Image restored: it is %(status)s again.", status=page.speech.status(image.status))
            return await page.redirect(f"{BASE}/images/{image.id}", restored)
        if action == "purge":
            done = await page.call(_bin(page).purge, image_id)
            removed = (
                page._("Image %(id)s removed for good.", id=image_id)
                if done
                else page._("Image %(id)s removed for good. Its data goes at the next scrub.", id=image_id)
            )
            return await page.redirect(f"{BASE}/bin", removed)
    except GlimpseError as exc:
        return await page.redirect(f"{BASE}/bin", message_for(exc, page._), error=True)
    return await page.redirect(f"{BASE}/bin", page._("Unknown action %(action)s.", action=action), error=True)


async def families(request: Request) -> Response:
    page = await Page.open(request)
    found: list[Family] = []
    error = None
    try:
        found = await page.call(_families(page).list, request.query_params.get("marker"))
    except GlimpseError as exc:
        error = message_for(exc, page._)
    return await page.render("families.html", families=found, list_error=error)
