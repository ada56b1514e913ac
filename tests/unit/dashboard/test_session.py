from __future__ import annotations

from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import Response

from glimpse.dashboard import _wants_html
from glimpse.dashboard.session import COOKIE, Sessions, check_csrf, load_secret
from glimpse.errors import Forbidden


def _request(cookie: str | None = None, accept: str = "") -> Request:
    headers = [(b"accept", accept.encode())]
    if cookie is not None:
        headers.append((b"cookie", f"{COOKIE}={cookie}".encode()))
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers})


def _cookie(response: Response) -> str:
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "Secure" in header and "SameSite=strict" in header
    return header.split(";")[0].split("=", 1)[1]


def test_a_session_round_trips_and_a_forged_one_is_dropped() -> None:
    sessions = Sessions("secret")
    response = Response()
    sessions.write(response, {"project_id": "p1", "csrf_token": "t"})
    cookie = _cookie(response)
    assert sessions.read(_request(cookie))["project_id"] == "p1"
    assert "project_id" not in Sessions("other key").read(_request(cookie))
    assert "project_id" not in sessions.read(_request(cookie[:-2] + "xx"))


def test_an_expired_session_is_dropped() -> None:
    sessions = Sessions("secret")
    response = Response()
    sessions.write(response, {"project_id": "p1", "expires": 1.0})
    assert "project_id" not in sessions.read(_request(_cookie(response)))


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
