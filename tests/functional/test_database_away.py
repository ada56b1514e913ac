"""The database server goes away under a running server (stopped, restarting, a failover, a network cut) and comes
back: meanwhile every request is a quick 503 in the API's error format (clients retry those), the server logs it in a
line and stays up, and once the database is back the same server answers again with nothing lost or half-written.

The server reaches the database through a TCP proxy that the test stops and starts again, so the machine's own
database servers, which other tests use, keep running. A server that vanishes without closing anything (its host
gone, a network cut) is played by dropping every packet sent to the proxy (iptables, on loopback only).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from glimpse.db.session import CONNECT_TIMEOUT, DEAD_PEER
from tests.functional.databases import fresh_database
from tests.functional.server import GlimpseServer
from tests.functional.tcp_proxy import TcpProxy

JSON = {"Accept": "application/json"}


@pytest.fixture(params=["postgresql", "mysql"])
def database(request: pytest.FixtureRequest) -> Iterator[str]:
    with fresh_database(request.param) as url:
        yield url


def test_a_database_away_is_a_503_and_its_return_needs_no_restart(database: str, tmp_path: Path) -> None:
    url = make_url(database)
    assert url.port is None or url.port in (3306, 5432)
    target = url.port or (5432 if url.get_backend_name() == "postgresql" else 3306)
    proxy = TcpProxy(target).__enter__()
    server = GlimpseServer(tmp_path, database_url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(False))
    assert server.command("db", "sync").returncode == 0
    server.start()
    try:
        created = httpx.post(f"{server.url}/v2/images", json={"name": "before", "disk_format": "raw"})
        assert created.status_code == 201
        image_id = created.json()["id"]

        proxy.__exit__()  # the database is away: pooled connections cut, new ones refused
        calls = [
            ("GET", "/v2/images", None),
            ("GET", f"/v2/images/{image_id}", None),
            ("POST", "/v2/images", {"name": "during"}),
            ("PATCH", f"/v2/images/{image_id}", [{"op": "replace", "path": "/name", "value": "renamed"}]),
            ("DELETE", f"/v2/images/{image_id}", None),
        ]
        for _ in range(2):  # the first use of each pooled connection, and afterwards
            for method, path, body in calls:
                headers = {**JSON, "Content-Type": "application/openstack-images-v2.1-json-patch"}
                started = time.monotonic()
                answer = httpx.request(
                    method, f"{server.url}{path}", json=body, headers=headers if method == "PATCH" else JSON, timeout=30
                )
                assert answer.status_code == 503, (method, path, answer.status_code, answer.text)
                assert "database cannot be reached" in answer.json()["message"]
                assert time.monotonic() - started < 15  # refused at once, not after a long wait
        assert httpx.get(f"{server.url}/versions").status_code == 200  # the server itself is up
        time.sleep(3)  # the background loops' turns (tasks, webhooks: about one a second) fail as well meanwhile
        log = server.log.read_text()
        assert "The database cannot be reached" in log and "Traceback" not in log
        assert log.count("The database cannot be reached") == 1  # once a minute, not once a request
        assert log.count("The task worker failed: the database cannot be reached") == 1  # not once a turn

        proxy = TcpProxy(target, port=proxy.port).__enter__()  # back, at the same address
        shown = httpx.get(f"{server.url}/v2/images/{image_id}")
        assert shown.status_code == 200 and shown.json()["name"] == "before"  # nothing of the failed writes
        assert [i["name"] for i in httpx.get(f"{server.url}/v2/images").json()["images"]] == ["before"]
        assert httpx.post(f"{server.url}/v2/images", json={"name": "after"}).status_code == 201
    finally:
        server.stop()
        proxy.__exit__()


@contextmanager
def packets_dropped(port: int) -> Iterator[None]:
    """Every packet to `port` on loopback dropped: its connections go silent, neither closed nor refused."""
    if shutil.which("iptables") is None:
        pytest.fail("iptables is needed to cut a connection silently (apt-get install iptables; scripts/test does)")
    rule = ["INPUT", "-i", "lo", "-p", "tcp", "--dport", str(port), "-j", "DROP"]
    subprocess.run(["iptables", "-A", *rule], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["iptables", "-D", *rule], check=True, capture_output=True)


def test_a_database_that_vanishes_without_a_word_is_given_up_in_seconds(database: str, tmp_path: Path) -> None:
    """Its pooled connections are open but nothing answers on them any more: the kernel alone would resend a query
    for 15 minutes. Keepalives and TCP_USER_TIMEOUT give the connection up, then a new one finds nobody: a 503."""
    url = make_url(database)
    target = url.port or (5432 if url.get_backend_name() == "postgresql" else 3306)
    with TcpProxy(target) as proxy:
        server = GlimpseServer(
            tmp_path, database_url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        )
        assert server.command("db", "sync").returncode == 0
        server.start()
        try:
            assert httpx.get(f"{server.url}/v2/images").status_code == 200  # a pooled connection to the server
            with packets_dropped(proxy.port):
                started = time.monotonic()
                answer = httpx.get(f"{server.url}/v2/images", headers=JSON, timeout=DEAD_PEER * 4)
                waited = time.monotonic() - started
                assert answer.status_code == 503, answer.text
                assert "database cannot be reached" in answer.json()["message"]
                assert waited < DEAD_PEER + CONNECT_TIMEOUT + 15, waited  # not the kernel's 15 minutes
            assert httpx.get(f"{server.url}/v2/images").status_code == 200  # reachable again: served again
        finally:
            server.stop()
