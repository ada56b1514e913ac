"""Logging in to the dashboard with a real Keystone: the user's own roles decide what the pages offer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import flash
from tests.functional.server import GlimpseServer
from tests.keystone.server import KeystoneServer
from tests.keystone.setup import authtoken_conf


@pytest.fixture(scope="module")
def glimpse_ks(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GlimpseServer]:
    conf = "[paste_deploy]\nflavor = keystone\n" + authtoken_conf(keystone_server)
    server = GlimpseServer(tmp_path_factory.mktemp("glimpse-dashboard-keystone"), extra_conf=conf).start()
    yield server
    server.stop()


def _log_in(page: Page, url: str, user: str, password: str, project: str) -> None:
    page.goto(f"{url}/dashboard/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Project").fill(project)
    page.get_by_role("button", name="Log in").click()


def test_keystone_login(page: Page, glimpse_ks: GlimpseServer, keystone_projects: dict[str, Any]) -> None:
    member = keystone_projects["users"]["Prj1-member"]
    _log_in(page, glimpse_ks.url, "Prj1-member", "wrong password", "Prj1")
    flash(page, "The user name, password or project is not right.", error=True)

    _log_in(page, glimpse_ks.url, "Prj1-member", member["password"], "Prj1")
    flash(page, "Logged in to project Prj1")
    expect(page.locator(".who")).to_contain_text("member")
    # The dashboard acts as the user: what it creates belongs to the user's Keystone project.
    page.get_by_role("link", name="Create image").first.click()
    page.get_by_label("Name").fill("from-keystone-login")
    page.get_by_role("button", name="Create image").click()
    flash(page, "Image created without data")
    expect(page.locator("#attributes")).to_contain_text(keystone_projects["projects"]["Prj1"])
    page.get_by_role("button", name="Log out").click()

    # A reader of the same project sees the image but is offered no change.
    reader = keystone_projects["users"]["Prj1-reader"]
    _log_in(page, glimpse_ks.url, "Prj1-reader", reader["password"], "Prj1")
    page.get_by_role("link", name="from-keystone-login").click()
    expect(page.locator("#read-only-note")).to_be_visible()
