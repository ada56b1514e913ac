"""The dashboard in Italian and English in Chromium: chosen from Accept-Language, switched in the footer, with
dates in the browser's own time zone (which static/zone.js reports)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import csrf_token, log_in
from tests.disk_bytes import raw_disk_bytes
from tests.functional.server import GlimpseServer

TOKYO = ZoneInfo("Asia/Tokyo")
WIDTHS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=list(WIDTHS))
def italian_page(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    """A browser in Tokyo that prefers Italian (its Accept-Language is it-IT), at desktop and phone widths."""
    context = browser.new_context(locale="it-IT", timezone_id="Asia/Tokyo", viewport=WIDTHS[request.param])
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _family_image(server: GlimpseServer, project: str, family: str) -> datetime:
    """An active image of family in project; its created_at."""
    headers = {"X-Project-Id": project, "X-Roles": "member,reader"}
    body = {"name": f"{family}-1", "disk_format": "raw", "container_format": "bare", "os_family": family}
    image = httpx.post(f"{server.url}/v2/images", json=body, headers=headers).json()
    put = httpx.put(f"{server.url}/v2/images/{image['id']}/file", content=raw_disk_bytes(4096),
                    headers={**headers, "Content-Type": "application/octet-stream"})  # fmt: skip
    assert put.status_code == 204
    return datetime.fromisoformat(image["created_at"])


def test_italian_from_the_browser_then_english_from_the_switcher(
    italian_page: Page, glimpse: GlimpseServer, shots: Path
) -> None:
    page = italian_page
    project, family = f"prj-{uuid.uuid4().hex[:6]}", f"os-{uuid.uuid4().hex[:6]}"
    created = _family_image(glimpse, project, family).astimezone(TOKYO)
    log_in(page, glimpse.url, project, "member")
    expect(page.locator("html")).to_have_attribute("lang", "it")
    nav = page.get_by_role("navigation", name="Principale")
    for link in ("Immagini", "Crea immagine", "Webhook", "Famiglie", "Cestino"):
        expect(nav.get_by_role("link", name=link, exact=True)).to_be_visible()

    nav.get_by_role("link", name="Webhook").click()
    expect(page.locator("#webhooks")).to_contain_text("Ancora nessun webhook.")
    expect(page.get_by_label("URL del destinatario")).to_be_visible()
    page.screenshot(path=shots / f"webhooks-it-{page.viewport_size['width']}.png", full_page=True)  # type: ignore[index]

    nav.get_by_role("link", name="Cestino").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cestino")
    expect(page.locator("#bin")).to_contain_text("Il cestino è vuoto.")
    expect(page.locator("#bin th").first).to_have_text("Nome")

    nav.get_by_role("link", name="Famiglie").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Famiglie di immagini")
    row = page.locator("#families tr", has_text=family)
    # Tokyo's time, to the second, named, in Italian's 24-hour clock.
    expect(row.locator(".created")).to_contain_text(f"{created:%H:%M:%S} JST")
    expect(row.locator(".created")).to_contain_text(f"{created.year}")
    page.screenshot(path=shots / f"families-it-{page.viewport_size['width']}.png", full_page=True)  # type: ignore[index]

    page.get_by_role("form", name="Lingua").get_by_role("button", name="English").click()
    expect(page).to_have_url(f"{glimpse.url}/dashboard/families")  # back on the page it was switched from
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("heading", level=1)).to_have_text("Image families")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Recycle bin")).to_be_visible()
    hour = created.hour % 12 or 12
    expect(row.locator(".created")).to_contain_text(f"{hour}:{created:%M:%S}\u202f{created:%p} JST")
    expect(page.get_by_role("form", name="Language").get_by_role("button", name="English")).to_have_attribute(
        "aria-current", "true"
    )
    # The choice outlives the page: the next one is English too, whatever the browser prefers.
    page.get_by_role("link", name="Recycle bin").click()
    expect(page.locator("#bin")).to_contain_text("The recycle bin is empty.")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"]  # type: ignore[index]


def test_the_switcher_needs_the_forms_token(italian_page: Page, glimpse: GlimpseServer) -> None:
    page = italian_page
    missing = page.goto(f"{glimpse.url}/dashboard/no-such-page")
    assert missing is not None and missing.status == 404
    expect(page.get_by_role("alert")).to_have_text("Questa pagina della dashboard non esiste.")
    page.goto(f"{glimpse.url}/dashboard/login")
    answer = page.request.post(f"{glimpse.url}/dashboard/language", form={"language": "en", "next": "/dashboard/bin"})
    assert answer.status == 403
    token = csrf_token(page)
    unknown = {"csrf_token": token, "language": "xx", "next": "/dashboard/bin"}
    italian = {"Accept-Language": "it-IT"}  # what the page's own requests send; page.request sends none
    answer = page.request.post(f"{glimpse.url}/dashboard/language", form=unknown, headers=italian, max_redirects=0)
    assert answer.status == 400 and "Lingua non disponibile: xx." in answer.text()
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "it")  # unchanged
    away = {"csrf_token": token, "language": "en", "next": "https://evil.example/"}
    answer = page.request.post(f"{glimpse.url}/dashboard/language", form=away, max_redirects=0)
    assert (answer.status, answer.headers["location"]) == (303, "/dashboard/images")
