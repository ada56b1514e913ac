"""Delete selected: one confirmation naming every selected image, then each one deleted in turn.

Each delete is its own use case under the caller's policy, so one refusal (protected, not the caller's,
gone meanwhile) stops only that image; the message names what was deleted and why the rest was not.
"""

from __future__ import annotations

from collections import Counter

from starlette.requests import Request
from starlette.responses import Response

from glimpse.dashboard.messages import message_for
from glimpse.dashboard.search import PAGE_SIZES
from glimpse.dashboard.web import BASE, Page
from glimpse.domain.entities import Image
from glimpse.errors import Forbidden, GlimpseError, NotFound

MAX_SELECTED = max(PAGE_SIZES)  # one page's rows
LIST_URL = f"{BASE}/images"


def _list_url(value: object) -> str:
    """Where to go back to: the list page the selection came from, never another site."""
    if isinstance(value, str) and (value == LIST_URL or value.startswith(LIST_URL + "?")):
        return value
    return LIST_URL


def labels(images: list[Image]) -> dict[str, str]:
    """Each image by its name, with its id only when it has no name or shares it with another selected one."""
    names = Counter(image.name for image in images)

    def label(image: Image) -> str:
        if not image.name:
            return f"unnamed image {image.id}"
        return f"“{image.name}”" if names[image.name] == 1 else f"“{image.name}” ({image.id})"

    return {image.id: label(image) for image in images}


async def _load(page: Page, ids: list[str]) -> tuple[list[Image], int]:
    found: list[Image] = []
    for image_id in ids:
        try:
            found.append(await page.call(page.dash.images.get, image_id))
        except NotFound:
            pass
    return found, len(ids) - len(found)


async def _delete(page: Page, image: Image, name: str) -> str | None:
    """None when deleted, else why not (a sentence naming the image)."""
    if image.protected:
        return page._("%(name)s is protected: unprotect it first", name=name)
    try:
        await page.call(page.dash.images.delete, image.id)
    except NotFound:
        return page._("%(name)s was already gone", name=name)
    except Forbidden:
        return page._("%(name)s cannot be deleted by you", name=name)
    except GlimpseError as exc:
        return page._("%(name)s was not deleted: %(reason)s", name=name, reason=message_for(exc, page._))
    return None


async def delete_selected(request: Request) -> Response:
    page = await Page.open(request)
    page.require_login()
    form = await page.form()
    back_to = _list_url(form.get("back_to"))
    ids = list(dict.fromkeys(v for v in form.getlist("id") if isinstance(v, str) and v))
    if not ids:
        return await page.redirect(back_to, page._("Select the images to delete first."), error=True)
    if len(ids) > MAX_SELECTED:
        return await page.redirect(
            back_to, page._("Select at most %(most)s images at a time.", most=MAX_SELECTED), error=True
        )
    images, missing = await _load(page, ids)
    named = labels(images)
    if form.get("confirmed") != "yes":
        return await page.render("delete_selected.html", images=images, named=named, missing=missing, back_to=back_to)
    deleted: list[str] = []
    refused: list[str] = []
    for image in images:
        reason = await _delete(page, image, named[image.id])
        if reason is None:
            deleted.append(named[image.id])
        else:
            refused.append(reason)
    parts = []
    if deleted:
        said = page.speech.ngettext(
            "Deleted %(count)s image: %(names)s.", "Deleted %(count)s images: %(names)s.", len(deleted)
        )
        parts.append(said % {"count": len(deleted), "names": ", ".join(deleted)})
    if refused:
        parts.append(page._("Not deleted: %(reasons)s.", reasons="; ".join(refused)))
    if missing:
        said = page.speech.ngettext(
            "%(count)s of the selected images no longer exists.",
            "%(count)s of the selected images no longer exist.",
            missing,
        )
        parts.append(said % {"count": missing})
    message = " ".join(parts) or page._("Nothing was deleted.")
    return await page.redirect(back_to, message, error=bool(refused or not deleted))
