"""Every dashboard page, as admin, member and reader, at a desktop and a phone's width: axe-core finds no serious or
critical violation, the page never scrolls sideways, and a screenshot of it is kept ($GLIMPSE_SCREENSHOTS).
The member sees every page in Italian too (longer words: they must still wrap). And the main flow done with the
keyboard alone."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.axe import blocking
from tests.browser.keyboard import is_focused, tab_to
from tests.browser.pages import flash, image_id_of, log_in
from tests.disk_bytes import raw_disk_bytes
from tests.functional.server import GlimpseServer

ROLES = ("admin", "member", "reader")
WIDTHS = {1280: 800, 390: 844}  # viewport width -> height (a laptop, a phone held upright)
LANGS = {"en": "en-US", "it": "it-IT"}  # the page's language -> the browser's (its Accept-Language)
ITALIAN_ROLES = ("member",)
PAGES = ("login", "images", "create", "image", "metadata", "delete", "bin", "families", "webhooks", "deliveries")
PAGES += ("error", "missing")  # a page of a missing image, and an address the dashboard does not have
LONG_WORD = "a11y-" + "x" * 60  # names without a space to break at: they must wrap, not widen the page
LIST_TABLES = "#images, #bin, #families, #webhooks, #deliveries"
CONF = """
[recycle_bin]
retention_period = 3600
[import_filtering_opts]
allow_private_addresses = true
allowed_ports =
"""


@dataclass(frozen=True)
class Site:
    server: GlimpseServer
    project: str
    image_id: str
    webhook_id: str

    def path(self, name: str) -> str:
        image = f"/dashboard/images/{self.image_id}"
        paths = {
            "login": "/dashboard/login",
            "images": "/dashboard/images",
            "create": "/dashboard/images/new",
            "image": image,
            "metadata": f"{image}/metadata",
            "delete": f"{image}/delete",
            "bin": "/dashboard/bin",
            "families": "/dashboard/families",
            "webhooks": "/dashboard/webhooks",
            "deliveries": f"/dashboard/webhooks?show={self.webhook_id}",  # a webhook's delivery log
            "error": f"/dashboard/images/{uuid.uuid4()}/metadata",
            "missing": "/dashboard/no-such-page",
        }
        return self.server.url + paths[name]


def _image(client: httpx.Client, name: str, **extra: object) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare", "os_family": LONG_WORD, **extra}
    image_id: str = client.post("/v2/images", json=body).json()["id"]
    data = {"Content-Type": "application/octet-stream"}
    assert client.put(f"/v2/images/{image_id}/file", content=raw_disk_bytes(70_000), headers=data).status_code == 204
    return image_id


def _populate(server: GlimpseServer, project: str) -> tuple[str, str]:
    """A project with what every page shows: a shared active image, a tag, a binned image, a family, a webhook."""
    tag = uuid.uuid4().hex[:6]
    member = httpx.Client(base_url=server.url, headers={"X-Project-Id": project, "X-Roles": "member,reader"})
    admin = httpx.Client(base_url=server.url, headers={"X-Project-Id": "ops", "X-Roles": "admin,member,reader"})
    with member, admin:
        image_id = _image(member, "cirros-0.6.2", architecture="x86_64", os_distro="cirros", visibility="shared")
        assert member.post(f"/v2/images/{image_id}/members", json={"member": "prj-friend"}).status_code == 200
        assert member.put(f"/v2/images/{image_id}/tags/tested").status_code == 204
        binned = _image(member, f"old-build-{LONG_WORD}")
        assert member.delete(f"/v2/images/{binned}").status_code == 204
        namespace = {
            "namespace": f"OS::A11y::{tag}", "display_name": "Disk settings", "visibility": "public",
            "description": "How the disk is attached.",
            "resource_type_associations": [{"name": "OS::Glance::Image", "prefix": "a11y_"}],
            "properties": {"bus": {"title": "Disk bus", "type": "string", "enum": ["scsi", "virtio"]}},
        }  # fmt: skip
        assert admin.post("/v2/metadefs/namespaces", json=namespace).status_code == 201
        hook = {
            "url": f"http://127.0.0.1:9/hook/{LONG_WORD}",
            "secret": "a11y-secret-0123456789",
            "events": ["image.send"],
            "description": LONG_WORD,
        }
        webhook = member.post("/v2/webhooks", json=hook)
        assert webhook.status_code == 201
        assert member.post(f"/v2/webhooks/{webhook.json()['id']}/actions/test").status_code in (200, 202)
    return image_id, webhook.json()["id"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    server = GlimpseServer(tmp_path_factory.mktemp("glimpse-a11y"), extra_conf=CONF).start()
    project = f"prj-a11y-{uuid.uuid4().hex}"  # 41 characters without a break
    try:
        yield Site(server, project, *_populate(server, project))
    finally:
        server.stop()


@pytest.fixture(scope="module")
def role_pages(browser: Browser, site: Site) -> Iterator[dict[str, Page]]:
    """One browser context per role and language ("member-it"), logged in once (the login page is seen from a
    context with no session)."""
    contexts: list[BrowserContext] = []
    pages: dict[str, Page] = {}
    for role, lang in [(role, "en") for role in ("anonymous", *ROLES)] + [("anonymous", "it"), ("member", "it")]:
        context = browser.new_context(bypass_csp=True, locale=LANGS[lang])  # axe is injected as an inline script
        context.set_default_timeout(15_000)
        contexts.append(context)
        pages[f"{role}-{lang}"] = page = context.new_page()
        if role != "anonymous":
            log_in(page, site.server.url, site.project, role)
    yield pages
    for context in contexts:
        context.close()


MATRIX = [
    pytest.param(name, role, width, lang, id=f"{name}-{role}-{width}-{lang}")
    for lang in LANGS
    for name in PAGES
    for role in (("anonymous",) if name == "login" else ROLES if lang == "en" else ITALIAN_ROLES)
    for width in WIDTHS
]


def _open(role_pages: dict[str, Page], site: Site, name: str, role: str, width: int, lang: str) -> Page:
    page = role_pages[f"{role}-{lang}"]
    page.set_viewport_size({"width": width, "height": WIDTHS[width]})
    page.goto(site.path(name))
    page.wait_for_load_state("load")
    assert page.locator("html").get_attribute("lang") == lang
    return page


@pytest.mark.parametrize(("name", "role", "width", "lang"), MATRIX)
def test_no_serious_accessibility_violation(
    role_pages: dict[str, Page], site: Site, shots: Path, name: str, role: str, width: int, lang: str
) -> None:
    page = _open(role_pages, site, name, role, width, lang)
    page.screenshot(path=shots / f"{name}-{role}-{width}-{lang}.png", full_page=True)
    found = blocking(page)
    assert not found, f"{page.url}:\n" + "\n".join(str(v) for v in found)


@pytest.mark.parametrize(("name", "role", "width", "lang"), MATRIX)
def test_no_sideways_scroll(
    role_pages: dict[str, Page], site: Site, name: str, role: str, width: int, lang: str
) -> None:
    page = _open(role_pages, site, name, role, width, lang)
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    wide = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
            .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
                               (e.className ? '.' + String(e.className).split(' ').join('.') : ''))"""
    )
    assert scroll_width <= inner_width, f"{page.url} is {scroll_width} px wide in {inner_width} px: {wide}"
    # The list tables show each row as a card on a phone: they do not scroll sideways inside their wrapper either.
    scrolling = page.evaluate(
        "tables => [...document.querySelectorAll(tables)].map(t => t.closest('.table-wrap') || t)"
        ".filter(w => w.scrollWidth > w.clientWidth).map(w => w.querySelector('table').id)",
        LIST_TABLES,
    )
    widths = page.evaluate(  # what makes them wide: each column's first cells, and how wide they are
        "ids => ids.map(id => [...document.getElementById(id).querySelectorAll('thead th, tbody tr:first-child > *')]"
        ".map(c => c.textContent.trim().slice(0, 24) + ': ' + Math.round(c.getBoundingClientRect().width)))",
        scrolling,
    )
    assert not scrolling, f"{page.url}: these tables scroll sideways: {scrolling} {widths}"


@pytest.mark.parametrize("width", WIDTHS)
def test_keyboard_only_create_edit_delete(page: Page, glimpse: GlimpseServer, width: int) -> None:
    """Log in, create an image, edit it and delete it with the keyboard alone, the focus always visible."""
    page.set_viewport_size({"width": width, "height": WIDTHS[width]})
    project, name = f"prj-kb-{uuid.uuid4().hex[:6]}", f"keyboard-{uuid.uuid4().hex[:6]}"
    keys = page.keyboard

    page.goto(f"{glimpse.url}/dashboard/login")
    expect(page.get_by_label("Project id")).to_be_focused()  # the field has the focus when the page opens
    keys.type(project)
    tab_to(page, page.get_by_role("button", name="Log in"))
    keys.press("Enter")
    flash(page, f"Logged in to project {project}")

    # The skip link is the first stop and takes the focus past the header.
    tab_to(page, page.get_by_role("link", name="Skip to content"))
    keys.press("Enter")
    assert is_focused(page.locator("main"))
    tab_to(page, page.get_by_role("link", name="Create image").first, backwards=True)
    keys.press("Enter")

    tab_to(page, page.get_by_label("Name"))
    keys.type("keyboard-typo")
    tab_to(page, page.get_by_label("Format", exact=True))
    keys.type("raw")  # a select's type-ahead
    tab_to(page, page.get_by_label("Other properties"))
    keys.type("os_distro=cirros")
    tab_to(page, page.get_by_role("button", name="Create image"))
    tab_to(page, page.get_by_label("Name"), backwards=True)  # back up to correct the name
    keys.press("Control+A")
    keys.type(name)
    tab_to(page, page.get_by_role("button", name="Create image"))
    keys.press("Enter")
    page.wait_for_url(f"{glimpse.url}/dashboard/images/*-*")
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    expect(page.locator("#attributes")).to_contain_text("raw")
    image_id = image_id_of(page)

    # The edit form is on the Properties tab: the arrow key moves there from Overview (selection follows focus).
    tab_to(page, page.get_by_role("tab", name="Overview"))
    keys.press("ArrowRight")
    expect(page.get_by_role("tab", name="Properties")).to_have_attribute("aria-selected", "true")
    tab_to(page, page.get_by_label("os_distro", exact=True))
    keys.press("Control+A")
    keys.type("debian")
    tab_to(page, page.get_by_label("New property name"))
    keys.type("os_version")
    keys.press("Tab")
    keys.type("12")
    tab_to(page, page.get_by_role("button", name="Save metadata"))
    keys.press("Space")
    flash(page, "Metadata saved.")
    expect(page.get_by_label("os_distro", exact=True)).to_have_value("debian")
    expect(page.get_by_label("os_version", exact=True)).to_have_value("12")

    tab_to(page, page.get_by_role("link", name="Delete…"))
    keys.press("Enter")
    tab_to(page, page.get_by_role("button", name="Delete image"))
    keys.press("Space")
    expect(page).to_have_url(f"{glimpse.url}/dashboard/images")
    expect(page.locator("#images")).not_to_contain_text(name)
    headers = {"X-Project-Id": project, "X-Roles": "member"}
    assert httpx.get(f"{glimpse.url}/v2/images/{image_id}", headers=headers).status_code == 404
