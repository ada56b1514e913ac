"""The recycle bin page (list, restore, purge) and the families page (each family's latest image)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from glimpse.dashboard.web import BASE, Page
from glimpse.domain.entities import BinnedImage
from glimpse.domain.families import Families, Family
from glimpse.domain.recycle_bin import RecycleBin
from glimpse.errors import GlimpseError, NotFound


def _bin(page: Page) -> RecycleBin:
    if page.dash.bin is None:
        raise NotFound("This dashboard has no recycle bin.")
    return page.dash.bin


def _families(page: Page) -> Families:
    if page.dash.families is None:
        raise NotFound("This dashboard shows no families.")
    return page.dash.families


async def bin_index(request: Request) -> Response:
    page = Page(request)
    found: list[BinnedImage] = []
    error = None
    marker = request.query_params.get("marker")
    try:
        params = {"marker": [marker]} if marker else {}
        found, more = await page.call(_bin(page).list, params)
    except GlimpseError as exc:
        error, more = exc.message, False
    next_url = f"{BASE}/bin?marker={found[-1].image.id}" if more and found else None
    return page.render("bin.html", binned=found, list_error=error, next_url=next_url)


async def bin_act(request: Request) -> Response:
    page = Page(request)
    page.require_login()
    image_id, action = request.path_params["image_id"], request.path_params["action"]
    await page.form()  # the CSRF token
    try:
        if action == "restore":
            image = await page.call(_bin(page).restore, image_id)
            return page.redirect(f"{BASE}/images/{image.id}", f"Image restored: it is {image.status} again.")
        if action == "purge":
            done = await page.call(_bin(page).purge, image_id)
            later = "" if done else " Its data goes at the next scrub."
            return page.redirect(f"{BASE}/bin", f"Image {image_id} removed for good.{later}")
    except GlimpseError as exc:
        return page.redirect(f"{BASE}/bin", exc.message, error=True)
    return page.redirect(f"{BASE}/bin", f"Unknown action {action}.", error=True)


async def families(request: Request) -> Response:
    page = Page(request)
    found: list[Family] = []
    error = None
    try:
        found = await page.call(_families(page).list, request.query_params.get("marker"))
    except GlimpseError as exc:
        error = exc.message
    return page.render("families.html", families=found, list_error=error)
