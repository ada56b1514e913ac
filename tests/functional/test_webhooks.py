"""Webhooks through real `glimpse serve` processes and a real receiver that checks every signature.

An image's whole life arrives in order; a receiver away for a while gets every event once it is back; a server
killed with SIGKILL mid-delivery loses nothing; two nodes on one PostgreSQL never send one event at once; the
egress policy refuses internal receivers; a receiver that never answers is cut at the deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.functional.databases import fresh_database
from tests.functional.server import GlimpseServer
from tests.functional.waiting import eventually
from tests.functional.webhook_receiver import Receiver

SECRET = "s3cret-for-the-receiver"
MEMBER = {"X-Project-Id": "project-a", "X-Roles": "member,reader"}
OTHER = {"X-Project-Id": "project-b", "X-Roles": "member,reader"}
ADMIN = {"X-Project-Id": "admin-project", "X-Roles": "admin,member,reader"}
JSON = {"Accept": "application/json"}
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
LOOPBACK = "[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports =\n"


def webhook_conf(delivery_timeout: float = 2.0, max_attempts: int = 50) -> str:
    return LOOPBACK + (
        f"[webhooks]\nretry_base_delay = 0.2\nretry_max_delay = 1\npoll_interval = 0.1\n"
        f"delivery_timeout = {delivery_timeout}\nmax_attempts = {max_attempts}\n"
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    srv = GlimpseServer(tmp_path_factory.mktemp("webhooks"), extra_conf=webhook_conf()).start()
    yield srv
    srv.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(SECRET).start()
    yield r
    r.stop()


def add_webhook(url: str, target: str, headers: dict[str, str] = MEMBER, **extra: Any) -> dict[str, Any]:
    body = {"url": target, "secret": SECRET, **extra}
    response = httpx.post(f"{url}/v2/webhooks", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def new_image(url: str, headers: dict[str, str] = MEMBER, **extra: Any) -> str:
    body = {"disk_format": "raw", "container_format": "bare", "name": "hooked", **extra}
    response = httpx.post(f"{url}/v2/images", json=body, headers=headers, timeout=30)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def deliveries(url: str, webhook_id: str, headers: dict[str, str] = MEMBER) -> list[dict[str, Any]]:
    response = httpx.get(f"{url}/v2/webhooks/{webhook_id}/deliveries", headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json()["deliveries"])


def all_delivered(url: str, webhook_id: str) -> list[dict[str, Any]]:
    """The delivery log once every event in it is delivered, else nothing."""
    logged = deliveries(url, webhook_id)
    return logged if logged and all(d["status"] == "delivered" for d in logged) else []


def test_an_images_whole_life_arrives_in_order(server: GlimpseServer, receiver: Receiver) -> None:
    hook = add_webhook(server.url, receiver.url)
    url = server.url
    image_id = new_image(url, visibility="shared")
    data = b"x" * 4096
    put = httpx.put(f"{url}/v2/images/{image_id}/file", content=data, headers={**MEMBER,
                    "Content-Type": "application/octet-stream"})  # fmt: skip
    assert put.status_code == 204, put.text
    patch = [{"op": "replace", "path": "/name", "value": "renamed"}]
    assert httpx.patch(f"{url}/v2/images/{image_id}", json=patch, headers={**MEMBER, **PATCH}).status_code == 200
    member = httpx.post(f"{url}/v2/images/{image_id}/members", json={"member": "project-b"}, headers=MEMBER)
    assert member.status_code == 200, member.text
    accepted = httpx.put(f"{url}/v2/images/{image_id}/members/project-b", json={"status": "accepted"}, headers=OTHER)
    assert accepted.status_code == 200, accepted.text
    assert httpx.post(f"{url}/v2/images/{image_id}/actions/deactivate", headers=ADMIN).status_code == 204
    assert httpx.post(f"{url}/v2/images/{image_id}/actions/reactivate", headers=ADMIN).status_code == 204
    assert httpx.delete(f"{url}/v2/images/{image_id}", headers=MEMBER).status_code == 204

    logged = eventually(lambda: [d for d in deliveries(url, hook["id"]) if d["type"] == "image.delete"]
                        and deliveries(url, hook["id"]), what="image.delete in the log")  # fmt: skip
    expected = [d["id"] for d in reversed(logged)]  # the log is newest first: this is the order of the events
    arrived = receiver.wait_for(len(expected))
    assert [r.id for r in arrived] == expected
    types = [r.type for r in arrived]
    assert types[0] == "org.openstack.image.image.create" and types[-1] == "org.openstack.image.image.delete"
    for needed in ("image.upload", "image.activate", "image.member.create", "image.member.update"):
        assert f"org.openstack.image.{needed}" in types
    assert all(r.subject == image_id for r in arrived)
    assert arrived[-1].data["deleted"] is True and arrived[0].data["id"] == image_id
    assert receiver.rejected == 0
    final = eventually(lambda: all_delivered(url, hook["id"]), what="all delivered")
    assert [d["attempts"] for d in final] == [1] * len(expected)


def test_a_receiver_away_gets_every_event_once_back(server: GlimpseServer, receiver: Receiver) -> None:
    hook = add_webhook(server.url, receiver.url)
    receiver.stop()
    images = [new_image(server.url) for _ in range(5)]
    # While it is away the attempts fail and are retried later: the log says so.
    eventually(lambda: all(d["attempts"] >= 2 and d["status"] == "pending" for d in deliveries(server.url, hook["id"]))
               and len(deliveries(server.url, hook["id"])) == 5, what="retries while away")  # fmt: skip
    assert "connect" in (deliveries(server.url, hook["id"])[0]["last_error"] or "").lower()
    receiver.start()  # the same port
    arrived = receiver.wait_for(5)
    assert sorted(r.subject for r in arrived) == sorted(images)
    time.sleep(1)  # anything sent twice would have arrived by now
    assert len(receiver.ids()) == len(set(receiver.ids())) == 5
    assert all(d["status"] == "delivered" for d in deliveries(server.url, hook["id"]))


def test_a_server_killed_mid_delivery_loses_nothing(tmp_path: Path, receiver: Receiver) -> None:
    srv = GlimpseServer(tmp_path / "killed", extra_conf=webhook_conf(delivery_timeout=5)).start()
    try:
        hook = add_webhook(srv.url, receiver.url)
        receiver.hold.set()  # the first delivery is still waiting for its answer when the server dies
        images = [new_image(srv.url) for _ in range(4)]
        eventually(lambda: receiver.ids(), timeout=20, what="a delivery in flight")
        srv.kill()
        receiver.hold.clear()
        receiver.release.set()
        srv.start()
        arrived = receiver.wait_for(4, timeout=90)  # the one in flight comes again once its lease ran out
        assert sorted(r.subject for r in arrived) == sorted(images)
        logged = eventually(lambda: all_delivered(srv.url, hook["id"]), what="all delivered")
        assert {d["id"] for d in logged} == {r.id for r in arrived}
        assert receiver.rejected == 0
    finally:
        srv.stop()


def test_two_nodes_on_postgresql_never_send_one_event_at_once(tmp_path: Path) -> None:
    receiver = Receiver(SECRET).start()
    receiver.delay = 0.05
    try:
        with fresh_database("postgresql") as url:
            nodes = [GlimpseServer(tmp_path / f"node{i}", url, extra_conf=webhook_conf()) for i in range(2)]
            assert nodes[0].command("db", "sync").returncode == 0
            for node in nodes:
                node.start()
            try:
                add_webhook(nodes[0].url, receiver.url)
                images = [new_image(nodes[i % 2].url) for i in range(60)]
                arrived = receiver.wait_for(60, timeout=120)
                time.sleep(1)
                assert sorted(r.subject for r in arrived) == sorted(images)
                assert receiver.concurrent == []
                assert len(receiver.ids()) == len(set(receiver.ids())) == 60
                sent = [node.log.read_text().count(f"HTTP Request: POST {receiver.url} ") for node in nodes]
                assert sum(sent) == 60 and min(sent) > 0, sent  # both nodes took part
            finally:
                for node in nodes:
                    node.stop()
    finally:
        receiver.stop()


def test_the_egress_policy_refuses_internal_receivers(tmp_path: Path, receiver: Receiver) -> None:
    strict = GlimpseServer(tmp_path / "strict", extra_conf="[import_filtering_opts]\nallowed_ports =\n").start()
    try:
        for target in (receiver.url, f"http://localhost:{receiver.port}/hook", "http://169.254.169.254/latest",
                       "http://[::1]:80/", "http://10.1.2.3/", "ftp://example.com/x"):  # fmt: skip
            body = {"url": target, "secret": SECRET}
            response = httpx.post(f"{strict.url}/v2/webhooks", json=body, headers={**MEMBER, **JSON})
            assert response.status_code == 400, (target, response.text)
            assert response.json()["code"] == "400 Bad Request"
        assert httpx.get(f"{strict.url}/v2/webhooks", headers=MEMBER).json()["webhooks"] == []
    finally:
        strict.stop()


def test_even_with_loopback_allowed_the_service_never_posts_to_itself(server: GlimpseServer) -> None:
    response = httpx.post(f"{server.url}/v2/webhooks", json={"url": f"{server.url}/v2/images", "secret": SECRET},
                          headers={**MEMBER, **JSON})  # fmt: skip
    assert response.status_code == 400, response.text
    assert "own endpoint" in response.json()["message"]


def test_a_receiver_that_never_answers_is_cut_at_the_deadline(tmp_path: Path, receiver: Receiver) -> None:
    stuck = Receiver(SECRET).start()
    stuck.hold.set()
    srv = GlimpseServer(tmp_path / "slow", extra_conf=webhook_conf(delivery_timeout=1.5, max_attempts=2)).start()
    try:
        slow = add_webhook(srv.url, stuck.url)
        fine = add_webhook(srv.url, receiver.url)
        image_id = new_image(srv.url)
        assert receiver.wait_for(1)[0].subject == image_id  # the other webhook is not held up
        failed = eventually(lambda: [d for d in deliveries(srv.url, slow["id"]) if d["status"] == "failed"],
                            timeout=60, what="the slow receiver's delivery to fail")  # fmt: skip
        assert failed[0]["attempts"] == 2
        assert "within" in failed[0]["last_error"] or "timeout" in failed[0]["last_error"].lower()
        assert len(stuck.ids()) == 2  # each attempt reached it, and each was cut
        assert deliveries(srv.url, fine["id"])[0]["status"] == "delivered"
    finally:
        stuck.stop()
        srv.stop()


def test_operators_cli_and_a_cron_round_of_deliveries(tmp_path: Path) -> None:
    receiver = Receiver(SECRET).start()
    receiver.stop()  # away while the server runs: the event waits in the outbox
    srv = GlimpseServer(tmp_path / "cli", extra_conf=webhook_conf()).start()
    try:
        made = srv.command("webhook", "create", receiver.url, "--secret", SECRET, "--project", "project-a",
                           "--events", "image.create")  # fmt: skip
        assert made.returncode == 0, made.stderr
        listed = json.loads(srv.command("webhook", "list", "--json").stdout)
        assert [(w["project_id"], w["url"], w["events"]) for w in listed] == [
            ("project-a", receiver.url, ["image.create"])
        ]
        assert SECRET not in json.dumps(listed)
        image_id = new_image(srv.url)
        eventually(lambda: deliveries(srv.url, listed[0]["id"])[0]["attempts"] >= 1, what="a first failed attempt")
    finally:
        srv.stop()
    receiver.start()
    try:
        # Cron rounds until the event is due: past its retry delay, or past the lease of an attempt the server was
        # stopped in the middle of (a lease outlives its sender by design; the next round takes the row over).
        deadline = time.monotonic() + 15
        while True:
            sent = srv.command("webhook", "deliver", "--once")
            assert sent.returncode == 0, sent.stderr
            if "0 delivered, 0 failed" not in sent.stdout.replace("\n", " ") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "1 delivered, 0 failed" in sent.stdout.replace("\n", " ")
        assert [r.subject for r in receiver.wait_for(1)] == [image_id]
        refused = srv.command("webhook", "create", "ftp://files.example.org/x", "--secret", SECRET, "--global")
        assert refused.returncode == 1 and "scheme ftp" in refused.stdout.replace("\n", " ")
        assert srv.command("webhook", "delete", listed[0]["id"]).returncode == 0
        assert json.loads(srv.command("webhook", "list", "--json").stdout) == []
    finally:
        receiver.stop()
