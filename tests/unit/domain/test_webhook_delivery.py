"""The rules of a webhook delivery: the CloudEvents envelope, the signature a receiver checks, the retry schedule,
and what one attempt records (over an in-memory outbox: the database's side is tests/integration's)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from glimpse.domain.webhook_delivery import (
    Deliverer,
    Post,
    Response,
    Schedule,
    backoff,
    encode,
    envelope,
    headers,
    sign,
    verify,
)
from glimpse.domain.webhook_entities import Claim, wants_event

BODY = b'{"id":"e1"}'
NOW = 1_800_000_000


def test_a_signature_verifies_with_its_secret_and_body_only() -> None:
    header = sign("k" * 20, NOW, BODY)
    assert header.startswith(f"t={NOW},v1=")
    assert verify("k" * 20, header, BODY, now=NOW)
    assert not verify("k" * 19 + "x", header, BODY, now=NOW)
    assert not verify("k" * 20, header, BODY + b" ", now=NOW)
    assert not verify("k" * 20, header.replace(f"t={NOW}", f"t={NOW + 1}"), BODY, now=NOW)  # the time is signed


def test_an_old_or_future_signature_is_a_replay() -> None:
    header = sign("k" * 20, NOW, BODY)
    assert verify("k" * 20, header, BODY, now=NOW + 300)
    assert not verify("k" * 20, header, BODY, now=NOW + 301)
    assert not verify("k" * 20, header, BODY, now=NOW - 301)


@pytest.mark.parametrize("header", ["", "v1=abc", "t=x,v1=abc", f"t={NOW},t={NOW},v1=abc", f"t={NOW}"])
def test_malformed_headers_never_verify(header: str) -> None:
    assert not verify("k" * 20, header, BODY, now=NOW)


def test_any_of_several_signatures_may_match_during_a_secret_rotation() -> None:
    good = sign("new-secret-value!", NOW, BODY).partition(",v1=")[2]
    assert verify("new-secret-value!", f"t={NOW},v1={'0' * 64},v1={good}", BODY, now=NOW)


def test_backoff_doubles_up_to_the_cap_with_jitter_in_its_upper_half() -> None:
    schedule = Schedule(base_delay=2, max_delay=60)
    assert [backoff(n, schedule, rand=lambda: 1.0) for n in (1, 2, 3, 4, 5, 6, 7)] == [2, 4, 8, 16, 32, 60, 60]
    assert [backoff(n, schedule, rand=lambda: 0.0) for n in (1, 2, 6)] == [1, 2, 30]
    assert backoff(10_000, schedule, rand=lambda: 0.5) == 45  # no overflow however many attempts


def test_the_lease_outlasts_any_attempt() -> None:
    assert Schedule(delivery_timeout=10).lease_seconds > 10


def test_the_envelope_is_cloudevents_1_0_structured() -> None:
    at = datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC)
    doc = envelope("e1", "https://images.example", "image.update", "img-1", {"id": "img-1"}, at)
    assert doc == {
        "specversion": "1.0",
        "id": "e1",
        "source": "https://images.example",
        "type": "org.openstack.image.image.update",
        "subject": "img-1",
        "time": "2026-05-04T03:02:01.123456Z",
        "datacontenttype": "application/json",
        "data": {"id": "img-1"},
    }
    assert json.loads(encode(doc)) == doc


def test_the_headers_carry_the_media_type_and_a_signature_of_the_body() -> None:
    claim = _claim()
    sent = headers(claim, now=NOW)
    assert sent["Content-Type"].startswith("application/cloudevents+json")
    assert verify(claim.secret, sent["Glimpse-Signature"], claim.body.encode(), now=NOW)


@pytest.mark.parametrize(
    ("events", "event_type", "wanted"),
    [
        ((), "image.update", True),
        (("image",), "image.member.create", True),
        (("image.member",), "image.update", False),
        (("image.update",), "image.update", True),
        (("image.update",), "image.upload", False),
    ],
)
def test_which_events_a_webhook_gets(events: tuple[str, ...], event_type: str, wanted: bool) -> None:
    assert wants_event(events, event_type) is wanted


@dataclass
class MemoryOutbox:
    """Records what the deliverer reports; `lost` plays a sender whose lease another took over."""

    lost: bool = False
    outcomes: list[tuple[str, int | None, str, datetime | None]] = field(default_factory=list)

    def claim(self, node: str, limit: int, lease_seconds: float) -> list[Claim]:
        return []

    def delivered(self, claim: Claim, status_code: int) -> bool:
        self.outcomes.append(("delivered", status_code, "", None))
        return not self.lost

    def retry(self, claim: Claim, status_code: int | None, error: str, at: datetime | None) -> bool:
        self.outcomes.append(("retry" if at else "failed", status_code, error, at))
        return not self.lost

    def purge(self, finished_before: datetime, limit: int) -> int:
        return 0


def _claim(attempts: int = 1) -> Claim:
    return Claim(1, "token", "hook-1", "http://receiver/", "secret-of-sixteen", "e1", '{"id":"e1"}', attempts)


def _answering(status: int | None, error: str = "") -> Post:
    def post(url: str, sent: Mapping[str, str], body: bytes) -> Response:
        return Response(status, error)

    return post


def test_a_2xx_answer_is_delivered() -> None:
    outbox = MemoryOutbox()
    assert Deliverer(outbox, _answering(202), Schedule(), "n").send(_claim())
    assert outbox.outcomes == [("delivered", 202, "", None)]


@pytest.mark.parametrize(("status", "error"), [(500, ""), (302, "redirect"), (None, "refused"), (410, "")])
def test_any_other_answer_is_retried_later(status: int | None, error: str) -> None:
    outbox = MemoryOutbox()
    before = datetime.now(UTC).replace(tzinfo=None)
    assert not Deliverer(outbox, _answering(status, error), Schedule(), "n").send(_claim())
    [(kind, code, note, at)] = outbox.outcomes
    assert (kind, code) == ("retry", status)
    assert note == (error or f"The receiver answered {status}.")
    assert at is not None and at > before


def test_the_last_attempt_fails_for_good() -> None:
    outbox = MemoryOutbox()
    deliverer = Deliverer(outbox, _answering(503), Schedule(max_attempts=3), "n")
    deliverer.send(_claim(attempts=3))
    assert outbox.outcomes[0][0] == "failed" and outbox.outcomes[0][3] is None


def test_a_failing_post_is_recorded_not_raised() -> None:
    def broken(url: str, sent: Mapping[str, str], body: bytes) -> Response:
        raise RuntimeError("boom")

    outbox = MemoryOutbox()
    assert not Deliverer(outbox, broken, Schedule(), "n").send(_claim())
    assert outbox.outcomes[0][0] == "retry" and "boom" in outbox.outcomes[0][2]


def test_a_sender_that_lost_its_lease_does_not_raise() -> None:
    outbox = MemoryOutbox(lost=True)
    assert Deliverer(outbox, _answering(200), Schedule(), "n").send(_claim())
