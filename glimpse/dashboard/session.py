"""Signed cookie sessions and CSRF tokens for the dashboard.

The cookie holds who is logged in (project, user, roles, an expiry) and a CSRF token, signed with
itsdangerous so it cannot be forged or altered; it is Secure, HttpOnly and SameSite=Strict, scoped
to /dashboard. No Keystone token is kept: the session ends when the user's token would have.
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from glimpse.errors import Forbidden

COOKIE = "glimpse_dashboard"
PATH = "/dashboard"
MAX_AGE = 8 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def load_secret(configured: str | None, data_dir: Path) -> str:
    """[dashboard] secret_key, or one generated once in the data dir and shared by every worker."""
    if configured:
        return configured
    path = data_dir / "dashboard-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".dashboard-secret.{os.getpid()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
        try:
            os.link(tmp, path)  # atomic: the first worker's key wins, the others read it
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


class Sessions:
    def __init__(self, secret: str, max_age: int = MAX_AGE) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="glimpse-dashboard-session")
        self.max_age = max_age

    def read(self, request: Request) -> dict[str, Any]:
        """The request's session; a fresh one (with a new CSRF token) when absent, forged or expired."""
        raw = request.cookies.get(COOKIE)
        data: dict[str, Any] = {}
        if raw:
            try:
                data = self._serializer.loads(raw, max_age=self.max_age)
            except BadSignature:
                data = {}
        if data.get("expires", 0) and data["expires"] < time.time():
            data = {}
        data.setdefault(CSRF_FIELD, secrets.token_urlsafe(32))
        return data

    def write(self, response: Response, data: dict[str, Any]) -> None:
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(data),
            max_age=self.max_age,
            path=PATH,
            secure=True,
            httponly=True,
            samesite="strict",
        )


def check_csrf(session: dict[str, Any], submitted: str | None) -> None:
    expected = session.get(CSRF_FIELD, "")
    if not submitted or not hmac.compare_digest(str(expected), submitted):
        raise Forbidden("The form has expired or did not come from this dashboard; reload the page and try again.")
