"""Logging in and out, switching project, and the administrator's list of sessions."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from glimpse.dashboard.i18n import N_
from glimpse.dashboard.login import NOAUTH_ROLES, Identity, KeystoneLogin, LoginFailed, noauth_identity
from glimpse.dashboard.messages import Missing, Refused, message_for
from glimpse.dashboard.web import BASE, Page
from glimpse.errors import GlimpseError

LOOPBACK = ("127.", "localhost", "[::1]")


async def _login_page(page: Page, error: str | None = None, values: dict[str, str] | None = None) -> Response:
    host = page.request.url.hostname or ""
    insecure = page.request.url.scheme != "https" and not host.startswith(LOOPBACK) and host != "::1"
    return await page.render(
        "login.html",
        status_code=400 if error else 200,
        login_error=error,
        values=values or {},
        roles=NOAUTH_ROLES,
        insecure=insecure,
    )


async def login_form(request: Request) -> Response:
    page = await Page.open(request)
    if page.identity is not None:
        return await page.redirect(f"{BASE}/images")
    return await _login_page(page)


async def login(request: Request) -> Response:
    page = await Page.open(request)
    values: dict[str, str] = {}
    try:
        form = await page.form()
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != "password"}
        identity: Identity
        keystone = page.dash.keystone
        max_age = page.dash.sessions.max_age
        if keystone is None:
            identity = noauth_identity(
                values.get("project", ""), values.get("role", ""), values.get("user", ""), max_age
            )
        else:
            password = form.get("password")
            identity = await run_in_threadpool(
                keystone.authenticate,
                values.get("user", "").strip(),
                password if isinstance(password, str) else "",
                values.get("project", "").strip(),
                values.get("domain", "").strip(),
                max_age,
            )
    except GlimpseError as exc:
        return await _login_page(page, message_for(exc, page._), values)
    # A new session (new id, new CSRF token), nothing kept from before the login.
    projects = await _projects(keystone, identity) if keystone is not None else []
    await run_in_threadpool(_start_session, page, identity, projects)
    return await page.redirect(
        f"{BASE}/images", page._("Logged in to project %(project)s.", project=identity.project_name)
    )


async def _projects(keystone: KeystoneLogin, identity: Identity) -> list[dict[str, str]]:
    if not identity.token:
        return []
    try:
        return await run_in_threadpool(keystone.projects, identity.token)
    except LoginFailed:
        return []  # no switcher: the login itself stands


def _start_session(page: Page, identity: Identity, projects: list[dict[str, str]]) -> None:
    """A new session (new id and CSRF token) for the identity; the one it replaces ends everywhere. Blocking (the
    session store, the policy)."""
    data: dict[str, Any] = {**identity.to_session(), "projects": projects}
    if identity.token:
        data["keystone_token"] = page.dash.sessions.seal(identity.token)
    page.dash.sessions.end(page.session)
    page.session = page.dash.sessions.fresh(data)
    page.identity = identity


async def logout(request: Request) -> Response:
    page = await Page.open(request)
    await page.form()
    page.session = await run_in_threadpool(page.dash.sessions.end, page.session)
    page.identity = None
    return await page.redirect(f"{BASE}/login", page._("You are logged out."))


async def switch_project(request: Request) -> Response:
    """Re-scope the Keystone login to another of the user's projects, with the token the session holds."""
    page = await Page.open(request)
    page.require_login()
    form = await page.form()
    keystone = page.dash.keystone
    sealed = page.session.get("keystone_token")
    token = page.dash.sessions.unseal(sealed) if isinstance(sealed, str) else None
    project_id = form.get("project_id")
    if keystone is None or token is None or page.identity is None:
        raise Refused(N_("Switching project needs a Keystone login."))
    known = {p["id"] for p in page.session.get("projects") or []}
    if not isinstance(project_id, str) or project_id not in known:
        return await page.redirect(f"{BASE}/images", page._("Choose one of your projects."), error=True)
    try:
        identity = await run_in_threadpool(
            keystone.rescope, token, project_id, page.identity.user_name, page.dash.sessions.max_age
        )
    except LoginFailed as exc:
        return await page.redirect(f"{BASE}/images", message_for(exc, page._), error=True)
    await run_in_threadpool(_start_session, page, identity, page.session.get("projects") or [])
    return await page.redirect(
        f"{BASE}/images", page._("Switched to project %(project)s.", project=identity.project_name)
    )


async def _admin_page(request: Request) -> Page:
    page = await Page.open(request)
    if not page.ctx.is_admin:
        raise Refused(N_("Only an administrator may list and revoke dashboard sessions."))
    return page


async def sessions_index(request: Request) -> Response:
    page = await _admin_page(request)
    active = await run_in_threadpool(page.dash.sessions.store.active)
    return await page.render("sessions.html", sessions=active)


async def revoke_session(request: Request) -> Response:
    page = await _admin_page(request)
    await page.form()
    key = request.path_params["key"]
    if not await run_in_threadpool(page.dash.sessions.store.delete, key):
        raise Missing(N_("No such active session."))
    return await page.redirect(f"{BASE}/sessions", page._("The session is revoked."))
