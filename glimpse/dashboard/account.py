"""Logging in and out."""

from __future__ import annotations

import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from glimpse.dashboard.login import NOAUTH_ROLES, Identity, noauth_identity
from glimpse.dashboard.session import CSRF_FIELD
from glimpse.dashboard.web import BASE, Page
from glimpse.errors import GlimpseError

LOOPBACK = ("127.", "localhost", "[::1]")


def _login_page(page: Page, error: str | None = None, values: dict[str, str] | None = None) -> Response:
    host = page.request.url.hostname or ""
    insecure = page.request.url.scheme != "https" and not host.startswith(LOOPBACK) and host != "::1"
    return page.render(
        "login.html",
        status_code=400 if error else 200,
        login_error=error,
        values=values or {},
        roles=NOAUTH_ROLES,
        insecure=insecure,
    )


async def login_form(request: Request) -> Response:
    page = Page(request)
    if page.identity is not None:
        return page.redirect(f"{BASE}/images")
    return _login_page(page)


async def login(request: Request) -> Response:
    page = Page(request)
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
        return _login_page(page, exc.message, values)
    # A new session: fresh CSRF token, nothing kept from before the login.
    page.session = {**identity.to_session(), CSRF_FIELD: secrets.token_urlsafe(32)}
    page.identity = identity
    return page.redirect(f"{BASE}/images", f"Logged in to project {identity.project_name}.")


async def logout(request: Request) -> Response:
    page = Page(request)
    await page.form()
    page.session = {CSRF_FIELD: secrets.token_urlsafe(32)}
    page.identity = None
    return page.redirect(f"{BASE}/login", "You are logged out.")
