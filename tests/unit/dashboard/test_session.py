"""Dashboard sessions over a real, migrated SQLite store: the cookie names a session, the store holds it, and
deleting the stored session (logout, revocation, expiry) ends it wherever the cookie is replayed."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from itsdangerous.encoding import base64_decode
from starlette.requests import Request
from starlette.responses import Response

from glimpse.config import load_settings
from glimpse.dashboard import _wants_html
from glimpse.dashboard.session import COOKIE, CSRF_FIELD, Session, Sessions, check_csrf, load_secret, session_key
from glimpse.db.dashboard_sessions import DashboardSessions
from glimpse.db.migrate import upgrade
from glimpse.db.redis_sessions import RedisSessions
from glimpse.db.session import make_engine, make_sessionmaker
from glimpse.domain.session_records import SessionStore
from glimpse.errors import ConfigError, Forbidden

REDIS_URL = "redis://127.0.0.1:6379/9"


@pytest.fixture(params=["database", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    """Each [dashboard] session_backend: a migrated SQLite database, the machine's Redis (a prefix of its own)."""
    if request.param == "redis":
        prefix = f"test-dashboard-{uuid.uuid4().hex}:"
        yield RedisSessions(REDIS_URL, prefix)
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
        return
    engine = make_engine(f"sqlite:///{tmp_path / 'glimpse.db'}")
    upgrade(engine)
    yield DashboardSessions(make_sessionmaker(engine))
    engine.dispose()


def _request(cookie: str | None = None, accept: str = "") -> Request:
    headers = [(b"accept", accept.encode())]
    if cookie is not None:
        headers.append((b"cookie", f"{COOKIE}={cookie}".encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def _cookie(response: Response) -> str:
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "Secure" in header and "SameSite=strict" in header and "Path=/dashboard" in header
    return header.split(";")[0].split("=", 1)[1]


def _logged_in(sessions: Sessions, **data: object) -> tuple[Session, str]:
    session = sessions.fresh({"project_id": "p1", "user_name": "alice", "expires": time.time() + 60, **data})
    response = Response()
    sessions.write(response, session)
    return session, _cookie(response)


def test_the_cookie_carries_only_a_signed_id_and_the_store_the_data(store: SessionStore) -> None:
    sessions = Sessions("secret", store)
    session, cookie = _logged_in(sessions)
    payload, _timestamp, _signature = cookie.split(".")  # the signature is random text: only the payload is read
    assert json.loads(base64_decode(payload)) == session.sid
    read = sessions.read(_request(cookie))
    assert read["project_id"] == "p1" and read.sid == session.sid and read[CSRF_FIELD] == session[CSRF_FIELD]
    stored = store.get(session_key(session.sid))
    assert stored is not None and stored.user_name == "alice" and session.sid not in stored.key
    # Another key does not accept the cookie, an altered cookie is no session.
    assert "project_id" not in Sessions("other key", store).read(_request(cookie))
    # The signature's first character: its last one may carry only padding bits, which decode the same.
    head, signature = cookie.rsplit(".", 1)
    altered = f"{head}.{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"
    assert "project_id" not in sessions.read(_request(altered))


def test_ending_a_session_refuses_its_replayed_cookie(store: SessionStore) -> None:
    sessions = Sessions("secret", store)
    session, cookie = _logged_in(sessions)
    new = sessions.end(session)
    assert new.sid != session.sid and new[CSRF_FIELD] != session[CSRF_FIELD]
    assert "project_id" not in sessions.read(_request(cookie))
    # Logging in again never keeps the id it came with.
    assert sessions.fresh({"project_id": "p1"}).sid != sessions.read(_request(cookie)).sid


def test_a_revoked_user_loses_every_session(store: SessionStore) -> None:
    sessions = Sessions("secret", store)
    _, first = _logged_in(sessions)
    _, second = _logged_in(sessions)
    _, other = _logged_in(sessions, user_name="bob")
    assert len(store.active()) == 3
    assert store.delete_user("alice") == 2
    assert "project_id" not in sessions.read(_request(first))
    assert "project_id" not in sessions.read(_request(second))
    assert sessions.read(_request(other))["user_name"] == "bob"


def test_an_expired_session_is_dropped_on_read_and_swept(store: SessionStore) -> None:
    sessions = Sessions("secret", store)
    _, cookie = _logged_in(sessions, expires=time.time() - 1)
    _logged_in(sessions, expires=time.time() - 1)
    assert store.active() == []
    assert "project_id" not in sessions.read(_request(cookie))  # and deleted on the way
    assert store.sweep() >= 1  # the other (Redis's index still lists the one it expired itself)
    assert store.sweep() == 0


def test_a_visitor_is_stored_only_while_a_flash_waits(store: SessionStore) -> None:
    sessions = Sessions("secret", store)
    visitor = sessions.read(_request())
    sessions.write(Response(), visitor)
    assert store.get(session_key(visitor.sid)) is None
    visitor["flash"] = {"text": "You are logged out.", "error": False}
    response = Response()
    sessions.write(response, visitor)
    again = sessions.read(_request(_cookie(response)))
    assert again.pop("flash")["text"] == "You are logged out."
    sessions.write(Response(), again)
    assert store.get(session_key(visitor.sid)) is None
    assert store.active() == []  # a visitor is no logged-in session


def test_the_keystone_token_is_kept_sealed(store: SessionStore) -> None:
    sessions = Sessions("secret", store)
    sealed = sessions.seal("gAAAA-a-keystone-token")
    assert "a-keystone-token" not in sealed
    assert sessions.unseal(sealed) == "gAAAA-a-keystone-token"
    assert Sessions("other key", store).unseal(sealed) is None
    assert sessions.unseal("not sealed") is None


def test_csrf_token_must_match() -> None:
    check_csrf({"csrf_token": "abc"}, "abc")
    for wrong in (None, "", "abd"):
        with pytest.raises(Forbidden):
            check_csrf({"csrf_token": "abc"}, wrong)


def test_generated_secret_is_kept(tmp_path: Path) -> None:
    first = load_secret(None, tmp_path / "data")
    assert len(first) > 40 and load_secret(None, tmp_path / "data") == first
    assert load_secret("configured", tmp_path / "data") == "configured"


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        ("text/html,application/xhtml+xml,*/*;q=0.8", True),
        ("application/json", False),
        ("*/*", False),
        ("", False),
        ("application/json, text/html", False),
    ],
)
def test_only_browsers_are_sent_to_the_dashboard(accept: str, html: bool) -> None:
    assert _wants_html(_request(accept=accept).scope) is html


def test_the_session_backend_is_configured(tmp_path: Path) -> None:
    conf = tmp_path / "glance-api.conf"
    assert load_settings([]).dashboard_redis_url is None  # the database by default
    conf.write_text(f"[dashboard]\nsession_backend = redis\nredis_url = {REDIS_URL}\n")
    assert load_settings([str(conf)]).dashboard_redis_url == REDIS_URL
    conf.write_text("[dashboard]\nsession_backend = redis\n")
    with pytest.raises(ConfigError, match="redis_url"):
        load_settings([str(conf)])
    conf.write_text("[dashboard]\nsession_backend = memcached\n")
    with pytest.raises(ConfigError):
        load_settings([str(conf)])
