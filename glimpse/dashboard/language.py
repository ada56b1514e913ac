"""The language switcher: remembers the reader's choice in a cookie and goes back to the page they were on."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from glimpse.dashboard.i18n import LANG_COOKIE, LANGUAGES
from glimpse.dashboard.session import PATH
from glimpse.dashboard.web import BASE, Page
from glimpse.errors import BadRequest

YEAR = 365 * 24 * 3600


def back_to(target: str) -> str:
    """target when it is a page of this dashboard (a path, no scheme or host); the images list otherwise."""
    parts = urlsplit(target)
    same_site = not parts.scheme and not parts.netloc and "\\" not in target and not target.startswith("//")
    inside = parts.path == BASE or parts.path.startswith(BASE + "/")
    return target if same_site and inside else f"{BASE}/images"


async def choose(request: Request) -> Response:
    page = await Page.open(request)
    form = await page.form()  # the CSRF token
    language = str(form.get("language") or "")
    if language not in LANGUAGES:
        raise BadRequest(page._("No such language: %(language)s.", language=language[:20]))
    response = await page.redirect(back_to(str(form.get("next") or "")))
    secure = request.url.scheme == "https"
    response.set_cookie(LANG_COOKIE, language, max_age=YEAR, path=PATH, secure=secure, httponly=True, samesite="lax")
    return response
