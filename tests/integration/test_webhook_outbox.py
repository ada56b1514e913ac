"""The webhook outbox on SQLite, PostgreSQL and MariaDB: claims are fenced, ordered per image, never shared by
two senders, taken over after a lease; finished rows are purged. And the /v2/webhooks API's rules in-process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from glimpse.db.migrate import upgrade
from glimpse.db.models import utcnow
from glimpse.db.repositories import ImageRepository
from glimpse.db.session import make_engine, make_sessionmaker
from glimpse.db.webhooks import WebhookStore
from glimpse.domain.entities import Image
from glimpse.domain.webhook_entities import Claim, OutgoingEvent, Webhook
from tests.integration.inprocess import app_client, database, settings_for

MEMBER = {"X-Project-Id": "project-a", "X-Roles": "member,reader", "Accept": "application/json"}
OTHER = {"X-Project-Id": "project-b", "X-Roles": "member,reader", "Accept": "application/json"}
READER = {"X-Project-Id": "project-a", "X-Roles": "reader", "Accept": "application/json"}
ADMIN = {"X-Project-Id": "admin", "X-Roles": "admin,member,reader", "Accept": "application/json"}
SECRET = "a-secret-of-some-length"


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with database(request.param) as url:
        if url is None:
            url = f"sqlite:///{tmp_path_factory.mktemp('outbox') / 'db.sqlite'}"
            upgrade(make_engine(url))
        yield url


@pytest.fixture(scope="module")
def store(db_url: str) -> Iterator[WebhookStore]:
    engine = make_engine(db_url)
    yield WebhookStore(make_sessionmaker(engine))
    engine.dispose()


def _hook(store: WebhookStore, project: str | None = "p", events: tuple[str, ...] = ()) -> Webhook:
    now = utcnow()
    hook = Webhook(str(time.monotonic_ns()), project, "http://r/", SECRET, events, "", True, now, now)
    return store.add(hook)


def _event(subject: str, event_type: str = "image.update") -> OutgoingEvent:
    event_id = f"e{time.monotonic_ns()}"
    return OutgoingEvent(event_id, event_type, subject, f'{{"id":"{event_id}"}}')


def _drain(store: WebhookStore, hook: Webhook) -> None:
    """Deliver whatever of this webhook is due, so that each test starts on an empty outbox."""
    while claims := store.claim("drain", 100, 30):
        for claim in claims:
            store.delivered(claim, 200)


def test_the_no_receiver_shortcut_misses_no_webhook_and_writes_nothing_for_none(store: WebhookStore) -> None:
    """enqueue answers "nobody listens" from one read before any write: a disabled webhook and another project's
    are nobody; the image's stored owner (not named in the event) and a global webhook are somebody."""
    image = ImageRepository(store._sessions).add(Image(id=str(uuid.uuid4()), owner="p-stored", visibility="private"))
    disabled = _hook(store, "p-stored")
    store.save(replace(disabled, enabled=False))
    elsewhere = _hook(store, "p-other")
    assert store.enqueue(_event(image.id), ["p-named"], image.id) == 0
    assert store.deliveries(disabled.id, 10) == [] and store.deliveries(elsewhere.id, 10) == []
    owners = _hook(store, "p-stored")
    assert store.enqueue(_event(image.id), ["p-named"], image.id) == 1  # found through the image's owner alone
    assert [d.subject for d in store.deliveries(owners.id, 10)] == [image.id]
    everyone = _hook(store, None)
    assert store.enqueue(_event("no-such-image"), [], "no-such-image") == 1
    for hook in (disabled, elsewhere, owners, everyone):
        store.delete(hook.id)


def test_an_event_goes_to_the_owners_and_the_global_webhooks_that_want_it(store: WebhookStore) -> None:
    mine, members_only, other, everyone = (
        _hook(store, "p1"), _hook(store, "p1", ("image.member",)), _hook(store, "p2"), _hook(store, None)
    )  # fmt: skip
    assert store.enqueue(_event("img-1"), ["p1"], None) == 2
    assert store.enqueue(_event("img-2", "image.member.create"), ["p3", "p1"], None) == 3
    assert [d.subject for d in store.deliveries(mine.id, 10)] == ["img-2", "img-1"]
    assert [d.event_type for d in store.deliveries(members_only.id, 10)] == ["image.member.create"]
    assert store.deliveries(other.id, 10) == []
    assert len(store.deliveries(everyone.id, 10)) == 2
    for hook in (mine, members_only, other, everyone):
        store.delete(hook.id)


def test_one_event_per_image_at_a_time_and_in_order(store: WebhookStore) -> None:
    hook = _hook(store)
    _drain(store, hook)
    first, second, other = _event("img-a"), _event("img-a"), _event("img-b")
    for event in (first, second, other):
        store.enqueue_for(hook.id, event)
    claims = store.claim("n1", 10, 30)
    assert sorted(c.event_id for c in claims) == sorted([first.event_id, other.event_id])  # not `second` yet
    held = next(c for c in claims if c.event_id == first.event_id)
    later = utcnow() + timedelta(seconds=60)
    assert store.retry(held, 500, "down", later)
    assert store.claim("n1", 10, 30) == []  # `first` waits for its retry, and `second` behind it
    store.delivered(next(c for c in claims if c.event_id == other.event_id), 200)
    store.delete(hook.id)


def test_a_lost_lease_is_taken_over_and_the_old_holder_is_fenced_out(store: WebhookStore) -> None:
    hook = _hook(store)
    _drain(store, hook)
    store.enqueue_for(hook.id, _event("img-c"))
    [stale] = store.claim("dead-node", 10, 3)
    assert stale.attempts == 1
    assert store.claim("n2", 10, 30) == []  # leased (for long enough on a busy machine)
    time.sleep(3.5)
    [fresh] = store.claim("n2", 10, 30)
    assert (fresh.event_id, fresh.attempts) == (stale.event_id, 2)
    assert not store.delivered(stale, 200)  # the dead node's late answer changes nothing
    assert not store.retry(stale, 500, "late", None)
    assert store.delivered(fresh, 200)
    [logged] = store.deliveries(hook.id, 10)
    assert (logged.status, logged.attempts, logged.last_status_code) == ("delivered", 2, 200)
    store.delete(hook.id)


def test_concurrent_senders_never_claim_one_row_twice(store: WebhookStore, db_url: str) -> None:
    hook = _hook(store)
    _drain(store, hook)
    for i in range(40):
        store.enqueue_for(hook.id, _event(f"img-{i}"))
    taken: list[Claim] = []
    lock = threading.Lock()

    def sender(mine: WebhookStore, name: str) -> None:
        for _ in range(400):  # a round may find every due row locked by the others (SKIP LOCKED)
            with lock:
                if len(taken) >= 40:
                    return
            claims = mine.claim(name, 3, 30)
            with lock:
                taken.extend(claims)

    # Each sender with its own engine and pool, as separate processes or nodes have.
    engines = [make_engine(db_url) for _ in range(4)]
    stores = [WebhookStore(make_sessionmaker(e)) for e in engines]
    threads = [threading.Thread(target=sender, args=(stores[i], f"n{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for engine in engines:
        engine.dispose()
    ids = [c.event_id for c in taken]
    assert len(ids) == len(set(ids)) == 40
    store.delete(hook.id)


def test_finished_rows_are_purged_after_the_retention(store: WebhookStore) -> None:
    hook = _hook(store)
    _drain(store, hook)
    store.enqueue_for(hook.id, _event("img-d"))
    store.enqueue_for(hook.id, _event("img-e"))
    done, given_up = store.claim("n", 10, 30)
    store.delivered(done, 200)
    store.retry(given_up, 500, "no", None)
    store.enqueue_for(hook.id, _event("img-f"))  # still pending: never purged
    assert store.purge(utcnow() - timedelta(hours=1), 100) == 0
    assert store.purge(utcnow() + timedelta(seconds=1), 100) >= 2
    assert [d.status for d in store.deliveries(hook.id, 10)] == ["pending"]
    store.delete(hook.id)
    assert store.deliveries(hook.id, 10) == []


# --- the API's rules, in-process ------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data = tmp_path_factory.mktemp("webhook-api")
    conf = "[import_filtering_opts]\nallowed_ports =\n[webhooks]\nmax_webhooks_per_project = 3\n"
    with app_client(settings_for(data, None, conf)) as c:
        yield c


def _create(client: TestClient, body: dict[str, Any], headers: dict[str, str] = MEMBER) -> Any:
    return client.post("/v2/webhooks", json={"url": "https://93.184.216.34/hook", "secret": SECRET, **body},
                       headers=headers)  # fmt: skip


def test_the_secret_is_never_shown_back(client: TestClient) -> None:
    created = _create(client, {"description": "ci"})
    assert created.status_code == 201, created.text
    hook = created.json()
    shown = client.get(f"/v2/webhooks/{hook['id']}", headers=MEMBER)
    listed = client.get("/v2/webhooks", headers=MEMBER)
    patched = client.patch(f"/v2/webhooks/{hook['id']}", json={"secret": "another-long-secret"}, headers=MEMBER)
    for response in (created, shown, listed, patched):
        assert (
            SECRET not in response.text and "another-long-secret" not in response.text and "secret" not in response.text
        )
    assert hook["project_id"] == "project-a" and hook["global"] is False
    assert client.delete(f"/v2/webhooks/{hook['id']}", headers=MEMBER).status_code == 204


def test_each_project_sees_and_changes_its_own_only(client: TestClient) -> None:
    hook = _create(client, {}).json()
    for method in ("get", "delete"):
        assert getattr(client, method)(f"/v2/webhooks/{hook['id']}", headers=OTHER).status_code == 404
    assert client.patch(f"/v2/webhooks/{hook['id']}", json={"enabled": False}, headers=OTHER).status_code == 404
    assert client.get(f"/v2/webhooks/{hook['id']}/deliveries", headers=OTHER).status_code == 404
    assert client.post(f"/v2/webhooks/{hook['id']}/actions/test", headers=OTHER).status_code == 404
    assert hook["id"] not in client.get("/v2/webhooks", headers=OTHER).text
    assert hook["id"] in client.get("/v2/webhooks", headers=ADMIN).text
    assert client.get(f"/v2/webhooks/{hook['id']}", headers=READER).status_code == 403  # a reader manages none
    assert _create(client, {}, READER).status_code == 403
    client.delete(f"/v2/webhooks/{hook['id']}", headers=MEMBER)


def test_only_admins_make_global_webhooks(client: TestClient) -> None:
    refused = _create(client, {"global": True})
    assert refused.status_code == 403, refused.text
    assert _create(client, {"project_id": "project-b"}).status_code == 403  # nor one for another project
    made = _create(client, {"global": True}, ADMIN)
    assert made.status_code == 201 and made.json()["global"] is True and made.json()["project_id"] is None
    assert client.get(f"/v2/webhooks/{made.json()['id']}", headers=MEMBER).status_code == 404
    assert client.delete(f"/v2/webhooks/{made.json()['id']}", headers=ADMIN).status_code == 204


@pytest.mark.parametrize(
    "body",
    [
        {"url": "not a url"},
        {"url": "http://127.0.0.1/x"},
        {"url": "file:///etc/passwd"},
        {"secret": "short"},
        {"secret": 12345678901234567},
        {"events": ["image.nope"]},
        {"events": "image"},
        {"enabled": "yes"},
        {"global": "true"},
        {"id": "chosen"},
        {"description": "x" * 256},
        {"url": "https://93.184.216.34/\x00"},
    ],
)
def test_bad_webhooks_are_400(client: TestClient, body: dict[str, Any]) -> None:
    response = _create(client, body)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "400 Bad Request"


def test_bad_requests_are_4xx_never_5xx(client: TestClient) -> None:
    assert (
        client.post("/v2/webhooks", content=b"{", headers={**MEMBER, "Content-Type": "application/json"}).status_code
        == 400
    )
    assert (
        client.post("/v2/webhooks", content=b"[]", headers={**MEMBER, "Content-Type": "application/json"}).status_code
        == 400
    )
    assert (
        client.post("/v2/webhooks", content=b"{}", headers={**MEMBER, "Content-Type": "text/plain"}).status_code == 415
    )
    assert client.get("/v2/webhooks/nope", headers=MEMBER).status_code == 404
    hook = _create(client, {}).json()
    assert client.get(f"/v2/webhooks/{hook['id']}/deliveries?limit=0", headers=MEMBER).status_code == 400
    assert client.get(f"/v2/webhooks/{hook['id']}/deliveries?limit=x", headers=MEMBER).status_code == 400
    assert client.put(f"/v2/webhooks/{hook['id']}", json={}, headers=MEMBER).status_code == 405
    client.delete(f"/v2/webhooks/{hook['id']}", headers=MEMBER)


def test_a_project_has_a_bounded_number_of_webhooks(client: TestClient) -> None:
    made = [_create(client, {}, {**MEMBER, "X-Project-Id": "busy"}).json()["id"] for _ in range(3)]
    assert _create(client, {}, {**MEMBER, "X-Project-Id": "busy"}).status_code == 413
    for hook_id in made:
        client.delete(f"/v2/webhooks/{hook_id}", headers=ADMIN)


def test_a_change_and_a_test_event_show_in_the_log(client: TestClient) -> None:
    hook = _create(client, {"events": ["image.member"]}).json()
    changed = client.patch(f"/v2/webhooks/{hook['id']}", json={"events": [], "enabled": False, "description": "off"},
                           headers={**MEMBER, "Content-Type": "application/merge-patch+json"})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert (changed.json()["events"], changed.json()["enabled"], changed.json()["description"]) == ([], False, "off")
    sent = client.post(f"/v2/webhooks/{hook['id']}/actions/test", headers=MEMBER)
    assert sent.status_code == 202
    [logged] = client.get(f"/v2/webhooks/{hook['id']}/deliveries", headers=MEMBER).json()["deliveries"]
    assert (logged["id"], logged["type"], logged["subject"]) == (sent.json()["id"], "webhook.test", hook["id"])
    client.delete(f"/v2/webhooks/{hook['id']}", headers=MEMBER)


def test_a_disabled_webhook_keeps_its_events_until_enabled(store: WebhookStore) -> None:
    hook = _hook(store)
    _drain(store, hook)
    store.enqueue_for(hook.id, _event("img-g"))
    store.save(replace(hook, enabled=False))
    assert store.claim("n", 10, 30) == []
    store.save(hook)
    [claim] = store.claim("n", 10, 30)
    assert store.delivered(claim, 200)
    store.delete(hook.id)
