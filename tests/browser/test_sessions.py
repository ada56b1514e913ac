"""Server-side dashboard sessions without Keystone: a logged-out or revoked cookie no longer works, and two nodes
on one database share the sessions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.pages import csrf_token, flash, log_in, log_out
from tests.functional.server import GlimpseServer


def _lands_on_login(page: Page, url: str) -> None:
    page.goto(f"{url}/dashboard/images")
    expect(page).to_have_url(f"{url}/dashboard/login")
    expect(page.get_by_role("button", name="Log in")).to_be_visible()


def test_a_cookie_replayed_after_logout_gets_the_login_page(
    page: Page, browser: Browser, glimpse: GlimpseServer
) -> None:
    log_in(page, glimpse.url, "replay-project", "member")
    cookies = page.context.cookies()
    session = [c for c in cookies if c["name"] == "glimpse_dashboard"]
    # The session cookie, and the reader's time zone (glimpse_tz) for dates: nothing else.
    assert len(session) == 1 and {c["name"] for c in cookies} <= {"glimpse_dashboard", "glimpse_tz"}
    assert "replay-project" not in session[0]["value"]  # only a signed id
    log_out(page)
    attacker = browser.new_context()
    try:
        attacker.add_cookies(cookies)  # type: ignore[arg-type]  (the cookies Playwright gave)
        _lands_on_login(attacker.new_page(), glimpse.url)
    finally:
        attacker.close()


def test_an_admin_revokes_a_session_and_its_next_request_is_refused(
    page: Page, browser: Browser, glimpse: GlimpseServer
) -> None:
    victim_context = browser.new_context()
    victim = victim_context.new_page()
    try:
        log_in(victim, glimpse.url, "revoked-project", "member")
        victim.goto(f"{glimpse.url}/dashboard/sessions")  # a member may not list sessions, nor revoke one
        expect(victim.locator("main")).to_contain_text("Only an administrator")
        revoke = f"{glimpse.url}/dashboard/sessions/{'0' * 64}/revoke"
        assert victim.request.post(revoke, form={"csrf_token": csrf_token(victim)}).status == 403

        log_in(page, glimpse.url, "admin-project", "admin")
        page.get_by_role("link", name="Sessions").click()
        row = page.locator("#sessions tr", has_text="revoked-project")
        expect(row).to_have_count(1)
        row.get_by_role("button", name="Revoke").click()
        flash(page, "The session is revoked.")
        expect(page.locator("#sessions")).not_to_contain_text("revoked-project")
        expect(page.locator("#sessions")).to_contain_text("admin-project")  # the admin's own goes on

        _lands_on_login(victim, glimpse.url)
        gone = page.request.post(revoke, form={"csrf_token": csrf_token(page)})
        assert gone.status == 404 and "No such active session." in gone.text()
        assert page.request.post(revoke, form={}).status == 403  # no CSRF token
    finally:
        victim_context.close()


def test_the_cli_lists_and_revokes_a_users_sessions(page: Page, glimpse: GlimpseServer) -> None:
    log_in(page, glimpse.url, "cli-project", "member")
    listed = glimpse.command("dashboard", "sessions")
    assert listed.returncode == 0 and "member@cli-project" in listed.stdout, listed.stderr
    revoked = glimpse.command("dashboard", "sessions", "--revoke-user", "member@cli-project")
    assert revoked.returncode == 0 and "1 session(s) of member@cli-project revoked" in revoked.stdout
    assert "member@cli-project" not in glimpse.command("dashboard", "sessions").stdout
    unknown = glimpse.command("dashboard", "sessions", "--revoke", "no-such-key")
    assert unknown.returncode == 1 and "no session with key no-such-key" in unknown.stdout
    _lands_on_login(page, glimpse.url)


@pytest.fixture(scope="module", params=["database", "redis"])
def two_nodes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GlimpseServer, GlimpseServer]]:
    """Two API nodes with the same [dashboard] secret_key, as a deployment gives them, sharing their sessions
    through one database, or through Redis (each node then has a database of its own)."""
    conf = "[dashboard]\nsecret_key = the-deployment-s-key\n"
    shared = tmp_path_factory.mktemp("shared-db")
    url: str | None = f"sqlite:///{shared / 'glimpse.db'}"
    if request.param == "redis":
        conf += "session_backend = redis\nredis_url = redis://127.0.0.1:6379/9\n"
        url = None
    first = GlimpseServer(tmp_path_factory.mktemp("node-a"), database_url=url, extra_conf=conf).start()
    second = GlimpseServer(tmp_path_factory.mktemp("node-b"), database_url=url, extra_conf=conf).start()
    yield first, second
    second.stop()
    first.stop()


def test_two_nodes_share_sessions_and_a_logout_on_one_ends_it_on_both(
    page: Page, two_nodes: tuple[GlimpseServer, GlimpseServer]
) -> None:
    a, b = two_nodes
    log_in(page, a.url, "two-nodes", "member")
    page.goto(f"{b.url}/dashboard/images")  # the same cookie (cookies ignore the port), the other node
    expect(page.locator(".who")).to_contain_text("two-nodes")
    page.get_by_role("button", name="Log out").click()
    flash(page, "You are logged out")
    _lands_on_login(page, a.url)
