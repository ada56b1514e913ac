"""Server-side dashboard sessions and CSRF tokens.

The cookie (signed, Secure, HttpOnly, SameSite=Strict, path /dashboard) carries only a random session id;
what the session holds (user, project, roles, expiry, a flash message, the Keystone token sealed with the
dashboard's key) lives in the shared session store under the id's SHA-256. Deleting the stored session ends
it on every node at once: logout, an admin's revocation. A visitor who is not logged in is stored only while
a flash message waits for them. The CSRF token is an HMAC of the session id, so it changes with the session
and needs no storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from glimpse.dashboard.i18n import N_
from glimpse.dashboard.messages import Refused
from glimpse.domain.session_records import SessionStore, StoredSession

COOKIE = "glimpse_dashboard"
PATH = "/dashboard"
MAX_AGE = 8 * 3600
FLASH_AGE = 600  # how long a logged-out visitor's flash message waits
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
IDENTITY_KEYS = ("user_id", "user_name", "project_id", "project_name")


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


def session_key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class Session(dict[str, Any]):
    """One browser's session data, with the random id its cookie carries."""

    def __init__(self, sid: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(data or {})
        self.sid = sid
        self.saved = dict(data or {})  # as the store has it: an unchanged session is not written again


def _naive_utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC).replace(tzinfo=None)


class Sessions:
    def __init__(self, secret: str, store: SessionStore, max_age: int = MAX_AGE) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt="glimpse-dashboard-session")
        self._csrf_key = hashlib.sha256(b"glimpse-dashboard-csrf:" + secret.encode()).digest()
        fernet_key = hashlib.sha256(b"glimpse-dashboard-token:" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(fernet_key))
        self.store = store
        self.max_age = max_age

    def _new(self, data: dict[str, Any] | None = None, sid: str | None = None) -> Session:
        session = Session(sid or secrets.token_urlsafe(32), data)
        session[CSRF_FIELD] = hmac.new(self._csrf_key, session.sid.encode(), "sha256").hexdigest()
        return session

    def read(self, request: Request) -> Session:
        """The request's session; an empty one when the cookie is absent, forged, expired or revoked."""
        raw = request.cookies.get(COOKIE)
        if raw:
            try:
                sid = self._serializer.loads(raw, max_age=self.max_age)
            except BadSignature:
                sid = None
            if isinstance(sid, str):
                # A signed id the store does not know (ended, revoked, expired, or a visitor's) is an empty session;
                # keeping its id keeps the login form's CSRF token valid, and a login always takes a new id.
                stored = self.store.get(session_key(sid))
                return self._new(stored.data if stored is not None else None, sid)
        return self._new()

    def fresh(self, data: dict[str, Any]) -> Session:
        """A new session (new id, new CSRF token) holding `data`: a login never keeps the id it came with."""
        session = self._new()
        session.update(data)
        return session

    def end(self, session: Session) -> Session:
        """Delete the session everywhere; returns a new, empty one."""
        self.store.delete(session_key(session.sid))
        return self._new()

    def write(self, response: Response, session: Session) -> None:
        data = {k: v for k, v in session.items() if k != CSRF_FIELD}
        key = session_key(session.sid)
        if data == session.saved:
            pass
        elif data:
            now = time.time()
            expires = float(data.get("expires") or now + FLASH_AGE)
            self.store.put(
                StoredSession(
                    key=key,
                    data=data,
                    expires_at=_naive_utc(expires),
                    created_at=_naive_utc(now),
                    **{k: data.get(k) for k in IDENTITY_KEYS},
                )
            )
        else:
            self.store.delete(key)
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(session.sid),
            max_age=self.max_age,
            path=PATH,
            secure=True,
            httponly=True,
            samesite="strict",
        )

    def seal(self, secret: str) -> str:
        """A Keystone token as the session keeps it: encrypted with the dashboard's key."""
        return self._fernet.encrypt(secret.encode()).decode()

    def unseal(self, sealed: str) -> str | None:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except (InvalidToken, ValueError):
            return None


def check_csrf(session: dict[str, Any], submitted: str | None) -> None:
    expected = session.get(CSRF_FIELD, "")
    if not submitted or not hmac.compare_digest(str(expected), submitted):
        raise Refused(N_("The form has expired or did not come from this dashboard; reload the page and try again."))
