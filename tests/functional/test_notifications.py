"""Glance's notifications, received by a real oslo.messaging listener from a real RabbitMQ.

The machine's broker carries one image's whole life (two uvicorn workers send); a private broker, killed
half-way, shows that requests answer as fast while it is away and that events flow again once it is back.
"""

from __future__ import annotations

import socket
import statistics
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.functional.rabbitmq import MACHINE_BROKER, Consumer, Event, Late, PrivateBroker, drain, new_topic
from tests.functional.server import GlimpseServer

IMAGE_KEYS = {
    "id", "name", "status", "created_at", "updated_at", "min_disk", "min_ram", "protected", "checksum", "owner",
    "disk_format", "container_format", "size", "virtual_size", "is_public", "visibility", "properties", "tags",
    "deleted", "deleted_at",
}  # fmt: skip
IMPORT_KEYS = frozenset({"os_glance_importing_to_stores", "os_glance_failed_import"})
MEMBER_KEYS = {"image_id", "member_id", "status", "created_at", "updated_at", "deleted", "deleted_at"}
TASK_KEYS = {
    "id", "type", "status", "result", "owner", "message", "expires_at", "created_at", "updated_at", "deleted",
    "deleted_at",
}  # fmt: skip
SEND_KEYS = {"bytes_sent", "image_id", "owner_id", "receiver_tenant_id", "receiver_user_id", "destination_ip"}

OWNER = {"X-Project-Id": "owner-project", "X-User-Id": "owner-user", "X-Roles": "member"}
MEMBER = {"X-Project-Id": "member-project", "X-User-Id": "member-user", "X-Roles": "member"}
ADMIN = {"X-Project-Id": "admin-project", "X-User-Id": "admin-user", "X-Roles": "admin"}
CLOSE = {"Connection": "close"}
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


def notifying_conf(url: str, topic: str, extra: str = "") -> str:
    return (
        f"default_publisher_id = image.testhost\n{extra}\n"
        f"[oslo_messaging_notifications]\ndriver = messagingv2\ntransport_url = {url}\ntopics = {topic}\n"
    )


def take(consumer: Consumer, count: int, timeout: float = 30) -> list[Event]:
    return [consumer.next(timeout) for _ in range(count)]


def types(events: list[Event]) -> list[str]:
    return [e.event_type for e in events]


def check_image(event: Event, image: dict[str, Any], extra_keys: frozenset[str] = frozenset()) -> None:
    """An image event's payload: Glance's keys exactly, and the values the API shows."""
    payload = event.payload
    assert event.priority == "info" and event.publisher_id == "image.testhost"
    assert set(payload) == IMAGE_KEYS | extra_keys, set(payload) ^ (IMAGE_KEYS | extra_keys)
    for key in ("id", "name", "status", "owner", "disk_format", "container_format", "size", "virtual_size",
                "checksum", "visibility", "protected", "min_disk", "min_ram", "created_at", "updated_at"):  # fmt: skip
        assert payload[key] == image[key], (event, key, payload[key], image[key])
    assert payload["is_public"] is (image["visibility"] == "public")
    assert sorted(payload["tags"]) == sorted(image["tags"])


@pytest.fixture()
def machine_topic() -> Iterator[tuple[Consumer, str]]:
    topic = new_topic()
    consumer = Consumer(MACHINE_BROKER, topic)
    yield consumer, topic
    consumer.stop()
    consumer.delete_queues()


def test_an_images_whole_life_as_glance_tells_it(tmp_path: Path, machine_topic: tuple[Consumer, str]) -> None:
    consumer, topic = machine_topic
    server = GlimpseServer(tmp_path, extra_conf=notifying_conf(MACHINE_BROKER, topic, "workers = 2")).start()
    try:
        api = httpx.Client(base_url=server.url, timeout=30)

        def image(image_id: str) -> dict[str, Any]:
            return dict(api.get(f"/v2/images/{image_id}", headers=ADMIN).json())

        body = {"name": "life", "disk_format": "raw", "container_format": "bare", "visibility": "shared"}
        created = api.post("/v2/images", json={**body, "tags": ["t1"], "os_distro": "debian"}, headers=OWNER)
        assert created.status_code == 201, created.text
        image_id = created.json()["id"]
        [event] = take(consumer, 1)
        assert event.event_type == "image.create"
        check_image(event, created.json())
        assert event.payload["properties"] == {"os_distro": "debian"} and event.payload["deleted"] is False

        data = b"glimpse" * 1000
        put = api.put(f"/v2/images/{image_id}/file", content=data,
                      headers={**OWNER, "Content-Type": "application/octet-stream"})  # fmt: skip
        assert put.status_code == 204, put.text
        active = image(image_id)
        events = take(consumer, 5)  # one request, one process: in order
        assert types(events) == ["image.update", "image.prepare", "image.upload", "image.activate", "image.update"]
        saving = {**created.json(), "status": "saving"}
        check_image(events[0], saving)
        check_image(events[1], saving, IMPORT_KEYS)
        assert events[1].payload["os_glance_importing_to_stores"] == []
        check_image(events[2], active, IMPORT_KEYS)
        check_image(events[3], active)
        check_image(events[4], active)
        assert events[2].payload["size"] == len(data) and events[2].payload["checksum"] == active["checksum"]

        renamed = api.patch(f"/v2/images/{image_id}", headers={**OWNER, **PATCH},
                            json=[{"op": "replace", "path": "/name", "value": "renamed"}])  # fmt: skip
        assert renamed.status_code == 200, renamed.text
        [event] = take(consumer, 1)
        assert event.event_type == "image.update" and event.payload["name"] == "renamed"
        check_image(event, renamed.json())

        added = api.post(f"/v2/images/{image_id}/members", json={"member": "member-project"}, headers=OWNER)
        assert added.status_code == 200, added.text
        accepted = api.put(f"/v2/images/{image_id}/members/member-project", json={"status": "accepted"},
                           headers=MEMBER)  # fmt: skip
        assert accepted.status_code == 200, accepted.text
        events = sorted(take(consumer, 2), key=lambda e: e.event_type)
        assert types(events) == ["image.member.create", "image.member.update"]
        for event, status in zip(events, ("pending", "accepted"), strict=True):
            assert set(event.payload) == MEMBER_KEYS
            assert event.payload["image_id"] == image_id and event.payload["member_id"] == "member-project"
            assert event.payload["status"] == status and event.payload["deleted"] is False
        assert events[1].payload["updated_at"] == accepted.json()["updated_at"]

        got = api.get(f"/v2/images/{image_id}/file", headers=MEMBER)
        assert got.status_code == 200 and got.content == data
        part = api.get(f"/v2/images/{image_id}/file", headers={**MEMBER, "Range": "bytes=0-99"})
        assert part.status_code == 206 and len(part.content) == 100
        sends = sorted(take(consumer, 2), key=lambda e: e.payload["bytes_sent"])
        assert types(sends) == ["image.send", "image.send"]
        for event, size in zip(sends, (100, len(data)), strict=True):
            assert event.priority == "info" and set(event.payload) == SEND_KEYS
            assert event.payload == {
                "bytes_sent": size, "image_id": image_id, "owner_id": "owner-project",
                "receiver_tenant_id": "member-project", "receiver_user_id": "member-user",
                "destination_ip": "127.0.0.1",
            }  # fmt: skip

        for action, status in (("deactivate", "deactivated"), ("reactivate", "active")):
            done = api.post(f"/v2/images/{image_id}/actions/{action}", headers=ADMIN)
            assert done.status_code == 204, done.text
            [event] = take(consumer, 1)
            assert event.event_type == "image.update" and event.payload["status"] == status
            check_image(event, image(image_id))

        removed = api.delete(f"/v2/images/{image_id}/members/member-project", headers=OWNER)
        assert removed.status_code == 204, removed.text
        [event] = take(consumer, 1)
        assert event.event_type == "image.member.delete" and set(event.payload) == MEMBER_KEYS
        assert event.payload["deleted"] is True and event.payload["deleted_at"].endswith("Z")

        last = image(image_id)
        assert api.delete(f"/v2/images/{image_id}", headers=OWNER).status_code == 204
        [event] = take(consumer, 1)
        assert event.event_type == "image.delete"
        check_image(event, {**last, "status": "deleted"})
        assert event.payload["deleted"] is True and event.payload["deleted_at"].endswith("Z")

        # A failed upload: Glance's error-priority image.upload (its payload a message), and the image queued again.
        bad = api.post("/v2/images", json={**body, "disk_format": "qcow2"}, headers=OWNER).json()
        refused = api.put(f"/v2/images/{bad['id']}/file", content=b"not a qcow2 image" * 100,
                          headers={**OWNER, "Content-Type": "application/octet-stream"})  # fmt: skip
        assert refused.status_code == 400, refused.text
        events = take(consumer, 5)
        assert types(events) == ["image.create", "image.update", "image.prepare", "image.upload", "image.update"]
        assert events[3].priority == "error" and isinstance(events[3].payload, str) and bad["id"] in events[3].payload
        assert events[4].payload["status"] == "queued"

        # An import: the task's events (from whichever worker ran it) and the image's as it becomes active.
        staged = api.post("/v2/images", json=body, headers=OWNER).json()
        assert take(consumer, 1)[0].event_type == "image.create"
        assert api.put(f"/v2/images/{staged['id']}/stage", content=data,
                       headers={**OWNER, "Content-Type": "application/octet-stream"}).status_code == 204  # fmt: skip
        started = api.post(f"/v2/images/{staged['id']}/import", json={"method": {"name": "glance-direct"}},
                           headers=OWNER)  # fmt: skip
        assert started.status_code == 202, started.text
        events = take(consumer, 7, timeout=60)
        assert sorted(types(events)) == sorted([
            "task.create", "task.run", "task.processing", "image.upload", "image.activate", "image.update",
            "task.success",
        ])  # fmt: skip
        runner = [e for e in events if e.event_type != "task.create"]  # one process, one order
        assert types(runner) == [
            "task.run", "task.processing", "image.upload", "image.activate", "image.update", "task.success",
        ]  # fmt: skip
        tasks = [e for e in events if e.event_type.startswith("task.")]
        for event in tasks:
            assert set(event.payload) == TASK_KEYS and event.payload["type"] == "api_image_import"
            assert event.payload["owner"] == "owner-project" and event.payload["result"] is None
        statuses = {e.event_type: e.payload["status"] for e in tasks}
        assert statuses["task.create"] == "pending" and statuses["task.success"] == "success"
        assert len({e.payload["id"] for e in tasks}) == 1
        check_image(runner[2], image(staged["id"]), IMPORT_KEYS)
        assert image(staged["id"])["status"] == "active"
        with pytest.raises(Exception):  # noqa: B017  (queue.Empty: nothing more was sent)
            consumer.next(timeout=2)
    finally:
        server.stop()


def test_disabled_notifications_by_type_and_by_group(tmp_path: Path, machine_topic: tuple[Consumer, str]) -> None:
    consumer, topic = machine_topic
    conf = notifying_conf(MACHINE_BROKER, topic, "disabled_notifications = image.update,image.member")
    server = GlimpseServer(tmp_path, extra_conf=conf).start()
    try:
        api = httpx.Client(base_url=server.url, timeout=30)
        body = {"name": "quiet", "disk_format": "raw", "container_format": "bare", "visibility": "shared"}
        image_id = api.post("/v2/images", json=body, headers=OWNER).json()["id"]
        api.patch(f"/v2/images/{image_id}", headers={**OWNER, **PATCH},
                  json=[{"op": "replace", "path": "/name", "value": "q2"}])  # fmt: skip
        assert api.post(f"/v2/images/{image_id}/members", json={"member": "m"}, headers=OWNER).status_code == 200
        assert api.delete(f"/v2/images/{image_id}", headers=OWNER).status_code == 204
        assert types(take(consumer, 2)) == ["image.create", "image.delete"]
        with pytest.raises(Exception):  # noqa: B017  (queue.Empty: the disabled ones never came)
            consumer.next(timeout=2)
    finally:
        server.stop()


def _timed_create(api: httpx.Client, name: str) -> float:
    start = time.perf_counter()
    response = api.post("/v2/images", json={"name": name}, headers=OWNER)
    assert response.status_code == 201, response.text
    return time.perf_counter() - start


def test_a_broker_killed_half_way_neither_slows_nor_fails_requests(tmp_path: Path) -> None:
    broker = PrivateBroker(tmp_path / "broker").start()
    topic = new_topic()
    # Durable, as operators set it for notifications to outlive a broker restart: what is sent once the broker is
    # back waits in the queue for the consumer that comes back (a transient queue dies with the broker).
    rabbit = (
        "[oslo_messaging_rabbit]\namqp_durable_queues = true\nrabbit_retry_interval = 1\nrabbit_retry_backoff = 1\n"
        "rabbit_interval_max = 2\n"
    )
    (tmp_path / "rabbit.conf").write_text(rabbit)
    consumer = Consumer(broker.url, topic, tmp_path / "rabbit.conf")
    conf = notifying_conf(broker.url, topic) + "queue_size = 20\n" + rabbit
    server = GlimpseServer(tmp_path / "glimpse", extra_conf=conf).start()
    try:
        api = httpx.Client(base_url=server.url, timeout=30)
        _timed_create(api, "warm-up")
        assert consumer.until("image.create", name="warm-up")[0].publisher_id == "image.testhost"
        before = [_timed_create(api, f"before-{i}") for i in range(20)]
        consumer.until("image.create", name="before-19")
        consumer.stop()  # its connection would only retry against a dead broker

        broker.kill()
        during = [_timed_create(api, f"during-{i}") for i in range(60)]  # three times what the queue holds
        listed = api.get("/v2/images?limit=100", headers=OWNER)
        assert listed.status_code == 200 and len(listed.json()["images"]) == 81
        # The broker's absence does not show in the answers: no request waits for it.
        assert max(during) < 2.0, during
        assert statistics.median(during) < max(0.25, 5 * statistics.median(before)), (before, during)
        deadline = time.monotonic() + 10
        while "Dropped" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Dropped" in server.log.read_text()  # past the queue's 20: counted and logged, not waited for

        broker.start()
        # The events kept while it was away go out first; a new one finds room once they are gone.
        seen: list[Event] = []
        for attempt in range(30):
            _timed_create(api, f"after-{attempt}")
            try:
                *more, event = drain(broker.url, topic, f"after-{attempt}", timeout=3)
                break
            except Late as late:
                seen += late.events
        else:
            raise AssertionError(f"nothing came after the broker was back: {seen}")
        seen += more
        assert event.payload["status"] == "queued" and event.publisher_id == "image.testhost"
        kept = [e.payload["name"] for e in seen if e.event_type == "image.create"]
        assert 19 <= len([n for n in kept if n.startswith("during-")]) <= 21, kept  # the queue's 20 (+1 in hand)
    finally:
        server.stop()
        broker.kill()


def _notifications(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        s.labels["result"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "glimpse_notifications_total"
    }


def test_sent_and_dropped_counts_are_metrics_of_every_worker(
    tmp_path: Path, machine_topic: tuple[Consumer, str]
) -> None:
    consumer, topic = machine_topic
    with socket.socket() as closed:  # a broker address nothing answers at
        closed.bind(("127.0.0.1", 0))
        away = f"rabbit://guest:guest@127.0.0.1:{closed.getsockname()[1]}/"
    sending = GlimpseServer(tmp_path / "sending", extra_conf=notifying_conf(MACHINE_BROKER, topic, "workers = 2"))
    failing_conf = notifying_conf(away, topic, "workers = 2") + "queue_size = 2\n"
    failing = GlimpseServer(tmp_path / "away", extra_conf=failing_conf)
    with ExitStack() as stack:
        for server in (sending, failing):
            server.start()
            stack.callback(server.stop)
        assert _notifications(sending.url) == {"sent": 0, "dropped": 0}
        for i in range(12):  # a connection each, so both workers send some
            response = httpx.post(f"{sending.url}/v2/images", json={"name": f"n{i}"}, headers=OWNER | CLOSE)
            assert response.status_code == 201
        assert len(take(consumer, 12)) == 12
        for _ in range(6):  # whichever worker answers the scrape counts both
            assert _notifications(sending.url) == {"sent": 12, "dropped": 0}

        for i in range(20):
            response = httpx.post(f"{failing.url}/v2/images", json={"name": f"f{i}"}, headers=OWNER | CLOSE)
            assert response.status_code == 201
        # Refused by a broker that is not there, or past a full queue: every event is dropped, none counts as sent.
        deadline = time.monotonic() + 60
        while _notifications(failing.url)["dropped"] < 20 and time.monotonic() < deadline:
            time.sleep(0.3)
        for _ in range(6):
            assert _notifications(failing.url) == {"sent": 0, "dropped": 20}
        log = failing.log.read_text()
        assert "Dropped" in log and "Payload=" not in log and "'name': 'f" not in log, log[-3000:]
