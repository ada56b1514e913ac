"""Logging in to the dashboard with a real Keystone: the user's own roles decide what the pages offer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import flash
from tests.functional.server import GlimpseServer
from tests.keystone.server import KeystoneServer
from tests.keystone.setup import _grant, _user, admin_client, authtoken_conf, password_for

SWITCHER = "dash-switcher"  # a member of Prj2 and Prj3


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
    page.get_by_label("Format", exact=True).select_option("raw")  # no file to detect it from
    page.get_by_role("button", name="Create image").click()
    flash(page, "Image created without data")
    expect(page.locator("#attributes")).to_contain_text(keystone_projects["projects"]["Prj1"])
    page.get_by_role("button", name="Log out").click()

    # A reader of the same project sees the image but is offered no change.
    reader = keystone_projects["users"]["Prj1-reader"]
    _log_in(page, glimpse_ks.url, "Prj1-reader", reader["password"], "Prj1")
    page.get_by_role("link", name="from-keystone-login").click()
    expect(page.locator("#read-only-note")).to_be_visible()


@pytest.fixture(scope="module")
def switcher(keystone_server: KeystoneServer, keystone_projects: dict[str, Any]) -> str:
    projects = keystone_projects["projects"]
    with admin_client(keystone_server) as client:
        user_id = _user(client, SWITCHER, password_for(SWITCHER), projects["Prj2"])
        for project in ("Prj2", "Prj3"):
            _grant(client, projects[project], user_id, keystone_projects["roles"]["member"])
    return password_for(SWITCHER)


def _session_cookie_of(cookies: list[Any]) -> str:
    return str(next(c["value"] for c in cookies if c["name"] == "glimpse_dashboard"))


def _session_cookie(page: Page) -> str:
    return _session_cookie_of(page.context.cookies())  # type: ignore[arg-type]


def _create_image(page: Page, name: str) -> None:
    page.get_by_role("link", name="Create image").first.click()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Format", exact=True).select_option("raw")
    page.get_by_role("button", name="Create image").click()
    flash(page, "Image created without data")


def _switch(page: Page, project: str) -> None:
    page.get_by_label("Project", exact=True).select_option(label=project)
    page.get_by_role("button", name="Switch").click()
    flash(page, f"Switched to project {project}")
    expect(page.locator(".who strong")).to_have_text(project)


def test_the_project_switcher_rescopes_without_the_password(
    page: Page, glimpse_ks: GlimpseServer, keystone_projects: dict[str, Any], switcher: str
) -> None:
    projects = keystone_projects["projects"]
    _log_in(page, glimpse_ks.url, SWITCHER, switcher, "Prj2")
    flash(page, "Logged in to project Prj2")
    options = page.get_by_label("Project", exact=True).locator("option")
    expect(options).to_have_text(["Prj2", "Prj3"])  # the user's projects only
    _create_image(page, "switcher-in-prj2")
    expect(page.locator("#attributes")).to_contain_text(projects["Prj2"])
    before = page.context.cookies()

    _switch(page, "Prj3")
    _create_image(page, "switcher-in-prj3")
    expect(page.locator("#attributes")).to_contain_text(projects["Prj3"])
    page.get_by_role("link", name="Images").first.click()
    expect(page.get_by_role("link", name="switcher-in-prj3")).to_be_visible()
    expect(page.get_by_role("link", name="switcher-in-prj2")).to_have_count(0)  # Prj2's private image

    _switch(page, "Prj2")
    page.get_by_role("link", name="Images").first.click()
    expect(page.get_by_role("link", name="switcher-in-prj2")).to_be_visible()
    expect(page.get_by_role("link", name="switcher-in-prj3")).to_have_count(0)
    assert _session_cookie(page) != _session_cookie_of(before)  # a switch is a new session id

    page.set_viewport_size({"width": 390, "height": 800})  # the switcher stays on the phone's screen
    box = page.get_by_role("button", name="Switch").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390


def test_switching_to_a_project_without_a_role_or_without_the_csrf_token_is_refused(
    page: Page, glimpse_ks: GlimpseServer, keystone_projects: dict[str, Any], switcher: str
) -> None:
    _log_in(page, glimpse_ks.url, SWITCHER, switcher, "Prj2")
    flash(page, "Logged in to project Prj2")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    url = f"{glimpse_ks.url}/dashboard/project"
    forged = page.request.post(url, form={"project_id": keystone_projects["projects"]["Prj3"]}, max_redirects=0)
    assert forged.status == 403
    other = page.request.post(url, form={"project_id": keystone_projects["projects"]["Prj1"], "csrf_token": token})
    assert "Choose one of your projects." in other.text()
    page.reload()
    expect(page.locator(".who strong")).to_have_text("Prj2")


def test_a_keystone_admin_revokes_a_users_session(
    page: Page, browser: Browser, glimpse_ks: GlimpseServer, keystone_projects: dict[str, Any]
) -> None:
    member_context = browser.new_context()
    member = member_context.new_page()
    try:
        _log_in(member, glimpse_ks.url, "Prj1-member", keystone_projects["users"]["Prj1-member"]["password"], "Prj1")
        flash(member, "Logged in to project Prj1")
        expect(member.get_by_label("Project", exact=True)).to_have_count(0)  # one project: no switcher

        _log_in(page, glimpse_ks.url, "Prj1-admin", keystone_projects["users"]["Prj1-admin"]["password"], "Prj1")
        page.get_by_role("link", name="Sessions").click()
        page.locator("#sessions tr", has_text="Prj1-member").get_by_role("button", name="Revoke").click()
        flash(page, "The session is revoked.")

        member.goto(f"{glimpse_ks.url}/dashboard/images")
        expect(member).to_have_url(f"{glimpse_ks.url}/dashboard/login")
    finally:
        member_context.close()
