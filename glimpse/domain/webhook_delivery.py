"""Webhook deliveries: the CloudEvents document, its signature, the retry schedule, and the sender's one round.

Delivery is CloudEvents 1.0 in structured mode: the body is one JSON document (`application/cloudevents+json`)
holding the attributes and the event's data, so the receiver gets, and the signature covers, everything at once.

The signature header `Glimpse-Signature: t=<unix seconds>,v1=<hex>` is HMAC-SHA256 under the webhook's secret
of `<t>.<body>`, the body's exact bytes. A receiver recomputes it, compares in constant time, and refuses a `t`
further than a few minutes from its clock: a captured request replayed later fails. Each attempt signs anew.

Every event is delivered at least once. A sender that crashed after the receiver took an event, or whose answer
got lost, sends it again with the same `id`: receivers drop ids they have seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from glimpse.domain.webhook_entities import Claim, Outbox

log = logging.getLogger(__name__)

SPECVERSION = "1.0"
MEDIA_TYPE = "application/cloudevents+json"
SIGNATURE_HEADER = "Glimpse-Signature"
TYPE_PREFIX = "org.openstack.image."  # + Glance's event type: org.openstack.image.image.update
TEST_EVENT = "webhook.test"
DEFAULT_TOLERANCE = 300  # seconds a receiver should accept between `t` and its clock


@dataclass(frozen=True)
class Response:
    """What the receiver answered; status None when there was no answer (refused, unreachable, too slow)."""

    status: int | None
    error: str = ""


# url, headers, body -> the answer. The caller's egress policy, deadline and size bounds apply inside.
Post = Callable[[str, Mapping[str, str], bytes], Response]


@dataclass(frozen=True)
class Schedule:
    """How often and how long a delivery is tried, and how long a sender may hold a row."""

    max_attempts: int = 10
    base_delay: float = 2.0  # seconds before the second attempt; doubling after each failure
    max_delay: float = 600.0
    delivery_timeout: float = 10.0  # the deadline of one attempt, connection to answer

    @property
    def lease_seconds(self) -> float:
        """Longer than any attempt can last (the deadline cuts it), so a live sender never loses its row."""
        return 2 * self.delivery_timeout + 5


def ce_type(event_type: str) -> str:
    return TYPE_PREFIX + event_type


def envelope(
    event_id: str, source: str, event_type: str, subject: str, data: Any, at: datetime | None = None
) -> dict[str, Any]:
    """The CloudEvents 1.0 document of one event (its JSON format)."""
    when = (at or datetime.now(UTC)).astimezone(UTC)
    return {
        "specversion": SPECVERSION,
        "id": event_id,
        "source": source,
        "type": ce_type(event_type),
        "subject": subject,
        "time": when.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": data,
    }


def encode(document: Mapping[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), sort_keys=True)


def new_event_id() -> str:
    return str(uuid.uuid4())


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The Glimpse-Signature header's value for this body sent at `timestamp` (unix seconds)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float | None = None, tolerance: int = DEFAULT_TOLERANCE) -> bool:
    """What a receiver does: the header parses, its time is recent, and one v1 signature matches."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        fields.setdefault(key, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).partition(",v1=")[2]
    return any(hmac.compare_digest(expected, v) for v in fields.get("v1", []))


def backoff(attempt: int, schedule: Schedule, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait after the `attempt`-th failure: base * 2**(attempt-1), capped, with jitter into its
    upper half so that receivers coming back are not hit by every sender at the same moment."""
    delay = min(schedule.max_delay, schedule.base_delay * 2.0 ** min(attempt - 1, 62))
    return delay / 2 + rand() * delay / 2


def headers(claim: Claim, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        "Content-Type": f"{MEDIA_TYPE}; charset=utf-8",
        SIGNATURE_HEADER: sign(claim.secret, timestamp, claim.body.encode()),
        "Glimpse-Webhook-Id": claim.webhook_id,
        "User-Agent": "glimpse-webhooks/1",
    }


class Deliverer:
    """Claims due rows of the outbox, sends each once, and records the outcome under its lease."""

    def __init__(self, outbox: Outbox, post: Post, schedule: Schedule, node: str) -> None:
        self.outbox = outbox
        self.post = post
        self.schedule = schedule
        self.node = node

    def claim(self, limit: int) -> list[Claim]:
        return self.outbox.claim(self.node, limit, self.schedule.lease_seconds)

    def send(self, claim: Claim) -> bool:
        """One attempt; True when delivered. Any failure is recorded on the row, never raised."""
        try:
            answer = self.post(claim.url, headers(claim), claim.body.encode())
        except Exception as exc:  # a sender never dies of one delivery
            log.exception("Webhook %s: sending event %s failed", claim.webhook_id, claim.event_id)
            answer = Response(None, f"{type(exc).__name__}: {exc}")
        if answer.status is not None and 200 <= answer.status < 300:
            if not self.outbox.delivered(claim, answer.status):
                log.warning("Webhook %s: event %s delivered after this sender's lease ended", claim.webhook_id,
                            claim.event_id)  # fmt: skip
            return True
        error = answer.error or f"The receiver answered {answer.status}."
        final = claim.attempts >= self.schedule.max_attempts
        at = None if final else _utcnow() + timedelta(seconds=backoff(claim.attempts, self.schedule))
        self.outbox.retry(claim, answer.status, error, at)
        if final:
            log.warning("Webhook %s: event %s failed after %d attempts: %s", claim.webhook_id, claim.event_id,
                        claim.attempts, error)  # fmt: skip
        return False

    def run_once(self, limit: int = 100) -> tuple[int, int]:
        """Everything due now, one attempt each, one after the other (the cron command): (delivered, failed)."""
        sent = failed = 0
        while True:
            claims = self.claim(min(limit - sent - failed, 10))
            if not claims:
                return sent, failed
            for claim in claims:
                if self.send(claim):
                    sent += 1
                else:
                    failed += 1
            if sent + failed >= limit:
                return sent, failed


def _utcnow() -> datetime:
    """Naive UTC, as the database's timestamps."""
    return datetime.now(UTC).replace(tzinfo=None)
