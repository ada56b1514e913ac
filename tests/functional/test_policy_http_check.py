"""A Glance policy.yaml may hand a rule to a remote server (oslo.policy's http: check, which blocks until the server
answers). While one request waits on it, the worker's other requests are still answered: a rule that may call out
keeps the checks off the event loop."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from tests.functional.dashboard_session import DashboardSession
from tests.functional.server import GlimpseServer


class PolicyServer:
    """Answers oslo.policy's http: checks ("True", or "False" once refusing), each only once the test releases it."""

    def __init__(self) -> None:
        self.refusing = False
        self.asked = threading.Event()
        self.release = threading.Event()
        self.targets: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                outer.targets.append(parse_qs(body).get("target", [""])[0])
                outer.asked.set()
                released = outer.release.wait(60)
                answer = b"True" if released and not outer.refusing else b"False"
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/check"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def policy_server() -> Iterator[PolicyServer]:
    server = PolicyServer()
    yield server
    server.close()


@pytest.fixture
def glimpse(tmp_path: Path, policy_server: PolicyServer) -> Iterator[GlimpseServer]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f'"get_image": "{policy_server.url}"\n')
    server = GlimpseServer(tmp_path, extra_conf=f"[oslo_policy]\npolicy_file = {policy}\n").start("--workers", "1")
    yield server
    server.stop()


def test_a_request_waiting_on_a_remote_policy_check_holds_up_no_other(
    glimpse: GlimpseServer, policy_server: PolicyServer
) -> None:
    body = {"name": "remote-checked", "disk_format": "raw", "container_format": "bare"}
    created = httpx.post(f"{glimpse.url}/v2/images", json=body, timeout=30)
    assert created.status_code == 201, created.text
    image_id = created.json()["id"]
    with ThreadPoolExecutor(1) as pool:
        show = pool.submit(httpx.get, f"{glimpse.url}/v2/images/{image_id}", timeout=60)
        assert policy_server.asked.wait(30), "the show never asked the policy server"
        # The only worker is still waiting for the policy server's answer to the show; it answers the rest.
        assert httpx.get(f"{glimpse.url}/versions", timeout=10).status_code == 200
        listed = httpx.get(f"{glimpse.url}/v2/images", timeout=10)
        assert listed.status_code == 200 and [i["id"] for i in listed.json()["images"]] == [image_id]
        assert not show.done()
        policy_server.release.set()
        shown = show.result(timeout=30)
    assert shown.status_code == 200 and shown.json()["id"] == image_id
    assert image_id in policy_server.targets[0]  # the server was asked about this image


def test_what_the_remote_policy_server_refuses_is_not_found(
    glimpse: GlimpseServer, policy_server: PolicyServer
) -> None:
    body = {"name": "refused", "disk_format": "raw", "container_format": "bare"}
    image_id = httpx.post(f"{glimpse.url}/v2/images", json=body, timeout=30).json()["id"]
    policy_server.refusing = True
    policy_server.release.set()
    answer = httpx.get(f"{glimpse.url}/v2/images/{image_id}", timeout=30)
    assert answer.status_code == 404 and policy_server.targets, answer.text  # Glance too hides what get_image refuses
    policy_server.refusing = False
    assert httpx.get(f"{glimpse.url}/v2/images/{image_id}", timeout=30).status_code == 200


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that takes connections (the kernel's backlog) and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def _remote_policy(tmp_path: Path, rules: str, options: str = "") -> GlimpseServer:
    policy = tmp_path / "policy.yaml"
    policy.write_text(rules)
    conf = f"[oslo_policy]\npolicy_file = {policy}\n{options}"
    return GlimpseServer(tmp_path, extra_conf=conf).start("--workers", "1")


def _assert_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503 and "policy server could not be reached" in answer.text, answer.text


def test_a_policy_server_that_cannot_be_reached_is_a_503_and_nothing_else_breaks(tmp_path: Path) -> None:
    """Nothing listens on the discard port: oslo.policy's HTTP client raises, which is neither a refusal (a 404
    here would tell the user the image is gone) nor a crash (500)."""
    glimpse = _remote_policy(tmp_path, '"get_image": "http://127.0.0.1:9/check"\n')
    try:
        body = {"name": "kept", "disk_format": "raw", "container_format": "bare"}
        image_id = httpx.post(f"{glimpse.url}/v2/images", json=body, timeout=30).json()["id"]
        _assert_unavailable(httpx.get(f"{glimpse.url}/v2/images/{image_id}", timeout=30))
        as_json = httpx.get(f"{glimpse.url}/v2/images/{image_id}", headers={"Accept": "application/json"}, timeout=30)
        assert as_json.status_code == 503 and as_json.json()["title"] == "Service Unavailable", as_json.text
        listed = httpx.get(f"{glimpse.url}/v2/images", timeout=30)  # get_images is still answered locally
        assert listed.status_code == 200 and [i["id"] for i in listed.json()["images"]] == [image_id]
    finally:
        glimpse.stop()


def test_remote_timeout_from_the_config_bounds_the_wait(tmp_path: Path, silent_port: int) -> None:
    """[oslo_policy] remote_timeout, as in glance-api.conf: a server that never answers costs that long, then
    503 (oslo.policy's default would be a minute)."""
    glimpse = _remote_policy(
        tmp_path, f'"get_images": "http://127.0.0.1:{silent_port}/check"\n', "remote_timeout = 1\n"
    )
    try:
        started = time.monotonic()
        _assert_unavailable(httpx.get(f"{glimpse.url}/v2/images", timeout=50))
        assert time.monotonic() - started < 30  # a minute's default would fail this
    finally:
        glimpse.stop()


def test_an_administrator_rule_that_cannot_be_answered_is_a_503_but_versions_answer(tmp_path: Path) -> None:
    """context_is_admin is asked of every request before any route: a 503 from the auth layer, in the API's error
    format; version discovery needs no caller and still answers."""
    glimpse = _remote_policy(tmp_path, '"context_is_admin": "http://127.0.0.1:9/check"\n')
    try:
        _assert_unavailable(httpx.get(f"{glimpse.url}/v2/images", timeout=30))
        assert httpx.get(f"{glimpse.url}/versions", timeout=30).status_code == 200
    finally:
        glimpse.stop()


MEMBER = {"X-Project-Id": "prj", "X-Roles": "member"}


def _image_and_browser(glimpse: GlimpseServer, name: str) -> tuple[str, DashboardSession]:
    """An image of project prj, and a browser logged in to the dashboard as one of its members."""
    body = {"name": name, "disk_format": "raw", "container_format": "bare"}
    image_id = httpx.post(f"{glimpse.url}/v2/images", json=body, headers=MEMBER, timeout=30).json()["id"]
    browser = DashboardSession(glimpse.url)
    browser.login("prj", "member")
    return image_id, browser


def test_a_dashboard_page_waiting_on_a_remote_policy_check_holds_up_no_other(
    tmp_path: Path, policy_server: PolicyServer
) -> None:
    """The dashboard checks what the caller may do to show its buttons: with a remote rule, those checks (and the
    session store's reads and writes) run off the event loop too."""
    glimpse = _remote_policy(tmp_path, f'"modify_image": "{policy_server.url}"\n')
    try:
        image_id, browser = _image_and_browser(glimpse, "shown-on-the-dashboard")
        with ThreadPoolExecutor(1) as pool:
            page = pool.submit(browser.send, "GET", f"/dashboard/images/{image_id}")
            assert policy_server.asked.wait(30), "the page never asked the policy server"
            assert httpx.get(f"{glimpse.url}/versions", timeout=10).status_code == 200
            listed = httpx.get(f"{glimpse.url}/v2/images", headers=MEMBER, timeout=10)
            assert listed.status_code == 200 and [i["id"] for i in listed.json()["images"]] == [image_id]
            assert not page.done()
            policy_server.release.set()
            shown = page.result(timeout=30)
        assert shown.status_code == 200 and "shown-on-the-dashboard" in shown.text, shown.text[:500]
    finally:
        glimpse.stop()


def test_a_dashboard_page_whose_policy_server_is_away_says_so(tmp_path: Path) -> None:
    glimpse = _remote_policy(tmp_path, '"modify_image": "http://127.0.0.1:9/check"\n')
    try:
        image_id, browser = _image_and_browser(glimpse, "kept")
        page = browser.send("GET", f"/dashboard/images/{image_id}")
        assert page.status_code == 503 and "policy server could not be reached" in page.text, page.text[:500]
        shown = httpx.get(f"{glimpse.url}/v2/images/{image_id}", headers=MEMBER, timeout=30)
        assert shown.status_code == 200  # the rules answered here still are
    finally:
        glimpse.stop()


def test_a_dashboard_session_whose_administrator_rule_cannot_be_answered_gets_an_error_page(tmp_path: Path) -> None:
    """context_is_admin settles every dashboard page's caller. Once its server is away, a page is the dashboard's
    503 page (the error page itself needs no answer)."""
    server = PolicyServer()
    server.release.set()
    glimpse = _remote_policy(tmp_path, f'"context_is_admin": "{server.url}"\n')
    try:
        browser = DashboardSession(glimpse.url)
        browser.login("prj", "member")
        assert browser.send("GET", "/dashboard/images").status_code == 200
        server.close()
        page = browser.send("GET", "/dashboard/images")
        assert page.status_code == 503 and "policy server could not be reached" in page.text, page.text[:500]
        assert "<title>Error" in page.text  # the dashboard's own page, not a bare server error
        again = DashboardSession(glimpse.url)
        form = {"csrf_token": again.csrf("/dashboard/login"), "project": "prj", "role": "member"}
        # The session keeps who logged in, not their answer: the login completes, its first page cannot.
        assert again.send("POST", "/dashboard/login", data=form).status_code == 303
        first = again.send("GET", "/dashboard/images")
        assert first.status_code == 503 and "policy server could not be reached" in first.text
    finally:
        glimpse.stop()
