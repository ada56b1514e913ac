"""What a person does on the dashboard, as small steps the tests combine."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.functional.server import GlimpseServer


def log_in(page: Page, url: str, project: str, role: str) -> None:
    """Logs in whatever the page's language (the fields by their ids); the welcome names the project."""
    page.goto(f"{url}/dashboard/login")
    page.locator("#project").fill(project)
    page.locator("#role").select_option(role)
    page.locator("main form button[type=submit]").click()
    expect(page.get_by_role("status")).to_contain_text(project)


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status")).to_contain_text("You are logged out")


def open_image(page: Page, url: str, image_id: str) -> None:
    page.goto(f"{url}/dashboard/images/{image_id}")


def image_id_of(page: Page) -> str:
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def fill_create_form(page: Page, name: str, source: Path | None) -> None:
    page.get_by_role("link", name="Create image").first.click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Format", exact=True).select_option("raw")
    page.get_by_label("Architecture").fill("x86_64")
    page.get_by_label("Other properties").fill("os_distro=cirros")
    if source is not None:
        page.get_by_label("Image file").set_input_files(str(source))


def flash(page: Page, text: str, *, error: bool = False) -> None:
    expect(page.get_by_role("alert" if error else "status").first).to_contain_text(text)


def csrf_token(page: Page) -> str:
    return page.locator("input[name=csrf_token]").first.get_attribute("value") or ""


def throttle_uploads(page: Page, bytes_per_second: int) -> None:
    """Chromium sends at most this many bytes a second (DevTools' network conditions), as a slow uplink."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    conditions = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second}
    cdp.send("Network.emulateNetworkConditions", conditions)


def api(server: GlimpseServer, project: str, role: str = "member") -> httpx.Client:
    """The Images API as a member (or `role`) of `project`, to check what the dashboard did."""
    headers = {"X-Project-Id": project, "X-Roles": role}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)
