"""KeystoneValidator against an identity endpoint that drops connections: tried again as keystonemiddleware does.

The endpoint is a small HTTP server on loopback that speaks just enough of Keystone's v3 token API (the service
user's sign-in and the validation of a caller's token) and can hang up on a given number of validations first.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from glimpse.auth.keystone import IdentityUnavailable, KeystoneSettings, KeystoneValidator
from glimpse.auth.token_cache import InProcessCache


def _token_body(user: str, project: str) -> bytes:
    # Stamped when answered, not when collected: a long test run must not see its tokens expire.
    now = datetime.now(UTC)
    token = {
        "expires_at": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "issued_at": now.strftime("%Y-%m-%dT%H:%M:%S.000000Z"),
        "methods": ["password"],
        "user": {"id": user, "name": user, "domain": {"id": "default", "name": "Default"}},
        "project": {"id": project, "name": project, "domain": {"id": "default", "name": "Default"}},
        "roles": [{"id": "r1", "name": "member"}],
        "catalog": [],
    }
    return json.dumps({"token": token}).encode()


class FlakyKeystone(ThreadingHTTPServer):
    """Hangs up without answering on the first `drops` validations (GET /v3/auth/tokens), then answers."""

    def __init__(self, drops: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.drops = drops
        self.validations = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v3"


class _Handler(BaseHTTPRequestHandler):
    server: FlakyKeystone

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in {**headers, "Content-Type": "application/json", "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # the service user signs in
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer(201, _token_body("glimpse", "service"), {"X-Subject-Token": "service-token"})

    def do_GET(self) -> None:  # a caller's token is validated
        self.server.validations += 1
        if self.server.validations <= self.server.drops:
            self.close_connection = True
            self.connection.close()  # no status line at all: the client sees the connection dropped
            return
        assert self.headers["X-Auth-Token"] == "service-token"
        self._answer(200, _token_body("u1", self.headers["X-Subject-Token"]), {})


@pytest.fixture
def keystone(request: pytest.FixtureRequest) -> Iterator[FlakyKeystone]:
    server = FlakyKeystone(drops=request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _validator(keystone: FlakyKeystone, max_retries: int) -> KeystoneValidator:
    settings = KeystoneSettings(
        keystone.url, keystone.url, "glimpse", "pw", "service", timeout=5, max_retries=max_retries
    )
    return KeystoneValidator(settings, InProcessCache())


@pytest.mark.parametrize("keystone", [2], indirect=True)
def test_a_dropped_validation_is_sent_again(keystone: FlakyKeystone) -> None:
    info = _validator(keystone, max_retries=3).validate("p1")
    assert info.project_id == "p1"
    assert keystone.validations == 3  # two dropped, the third answered


@pytest.mark.parametrize("keystone", [2], indirect=True)
def test_past_the_retries_the_identity_service_is_unavailable_and_the_log_says_why(
    keystone: FlakyKeystone, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="glimpse.auth.keystone"), pytest.raises(IdentityUnavailable):
        _validator(keystone, max_retries=1).validate("p1")
    assert keystone.validations == 2
    assert any("could not be validated" in r.getMessage() and keystone.url in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("keystone", [0], indirect=True)
def test_a_validation_that_worked_is_not_sent_twice(keystone: FlakyKeystone) -> None:
    validator = _validator(keystone, max_retries=3)
    assert validator.validate("p1").project_id == "p1"
    assert validator.validate("p1").project_id == "p1"  # from the cache
    assert keystone.validations == 1
