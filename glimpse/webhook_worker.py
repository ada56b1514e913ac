"""The webhook sender inside each API process: claims due events of the outbox and sends them, a few at once.

It claims no more rows than it has free senders, so a claimed row starts out at once and its lease (longer than
any attempt may last) never runs out while it waits. Every `purge_every` seconds it also purges the outbox of
events finished longer ago than the retention. The rows it holds are all it keeps in memory, whatever the number
of events waiting for a receiver that is away.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from glimpse.domain.webhook_delivery import Deliverer
from glimpse.domain.webhook_entities import Claim
from glimpse.worker import turn_failed

log = logging.getLogger(__name__)

PURGE_BATCH = 1000


class WebhookSender:
    def __init__(
        self, deliverer: Deliverer, concurrency: int, poll: float, retention: timedelta, purge_every: float = 600.0
    ) -> None:
        self.deliverer = deliverer
        self.poll = poll
        self.retention = retention
        self.purge_every = purge_every
        self._free = concurrency
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="glimpse-webhook")
        self._thread = threading.Thread(target=self._loop, name="glimpse-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop claiming; a delivery under way finishes within its deadline or is sent again after its lease."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        next_purge = 0.0
        while not self._stop.is_set():
            busy = False
            try:
                now = datetime.now(UTC)
                if now.timestamp() >= next_purge:
                    next_purge = now.timestamp() + self.purge_every
                    self._purge(now)
                busy = self._claim_while_free()
            except Exception as exc:  # the database may be away for a moment: keep the sender alive
                turn_failed(log, "The webhook sender failed", exc)
            self._stop.wait(0.02 if busy else self.poll)

    def _purge(self, now: datetime) -> None:
        before = now.replace(tzinfo=None) - self.retention
        purged = self.deliverer.outbox.purge(before, PURGE_BATCH)
        if purged:
            log.info("Purged %d finished webhook deliveries older than %s", purged, self.retention)

    def _claim_while_free(self) -> bool:
        with self._lock:
            free = self._free
        if free <= 0:
            return True
        claims = self.deliverer.claim(free)
        for claim in claims:
            with self._lock:
                self._free -= 1
            self._pool.submit(self._send, claim)
        return bool(claims)

    def _send(self, claim: Claim) -> None:
        try:
            self.deliverer.send(claim)
        except Exception:  # recorded on the row when possible; the next claim after the lease retries
            log.exception("Webhook %s: event %s could not be recorded", claim.webhook_id, claim.event_id)
        finally:
            with self._lock:
                self._free += 1
