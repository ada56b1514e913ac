"""A Notifier that hands events to one background thread through a bounded queue.

The request thread only ever puts into the queue (never waits): when the bus is slow or away, the sending
thread waits (oslo.messaging retries as `[oslo_messaging_notifications] retry` says), the queue fills, and
further events are dropped, counted, and reported at most once per interval. Each process (uvicorn worker)
gets its own thread and queue: a process forked after the first event starts a fresh one.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Payload = dict[str, Any] | str
Send = Callable[[str, str, Payload], None]

REPORT_EVERY = 60.0  # seconds between two warnings about dropped events


@dataclass
class Counts:
    sent: int = 0
    dropped: int = 0  # since the process started
    unreported: int = 0  # dropped since the last warning


class QueuedNotifier:
    def __init__(
        self,
        connect: Callable[[], Send],
        capacity: int = 10000,
        report_every: float = REPORT_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """connect: builds the function that really sends (called in the sending thread, once per process)."""
        self._connect = connect
        self._capacity = capacity
        self._report_every = report_every
        self._clock = clock
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[str, str, Payload] | None] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._last_report = -report_every
        self.counts = Counts()
        # Told "sent" or "dropped" for each event (the metrics), from whichever thread counted it.
        self.listener: Callable[[str], None] | None = None

    def notify(self, priority: str, event_type: str, payload: Payload) -> None:
        self._running()
        try:
            self._queue.put_nowait((priority, event_type, payload))
        except queue.Full:
            self._dropped(f"{self._capacity} events wait for the message bus already")

    def close(self, timeout: float = 2.0) -> None:
        """Give queued events `timeout` seconds to go out, then stop the thread (a bus still away keeps them)."""
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return
        deadline = self._clock() + timeout
        while not self._queue.empty() and thread.is_alive() and self._clock() < deadline:
            time.sleep(0.05)
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass  # the daemon thread ends with the process
        thread.join(max(0.0, deadline - self._clock()))
        self._report(force=True)

    def _running(self) -> None:
        if self._pid == os.getpid() and self._thread is not None:
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None:
                return
            if self._pid != os.getpid():  # a fork: the parent's queue and thread are not ours
                self._queue = queue.Queue(self._capacity)
                self.counts = Counts()
            self._thread = threading.Thread(target=self._run, name="glimpse-notifier", daemon=True)
            self._thread.start()
            self._pid = os.getpid()

    def _run(self) -> None:
        send: Send | None = None
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                send = send or self._connect()
                send(*item)
            except Exception as exc:  # a message the bus refused, or a bus that cannot be reached at all
                self._dropped(f"the message bus failed: {exc}")
                continue
            with self._lock:
                self.counts.sent += 1
            self._tell("sent")
            if self.counts.unreported:
                self._report(force=True)

    def _dropped(self, why: str) -> None:
        with self._lock:
            self.counts.dropped += 1
            self.counts.unreported += 1
        self._tell("dropped")
        self._report(why=why)

    def _tell(self, result: str) -> None:
        if self.listener is None:
            return
        try:
            self.listener(result)
        except Exception:  # counting must never stop the sending
            log.warning("Could not count a notification %s", result, exc_info=True)

    def _report(self, force: bool = False, why: str = "") -> None:
        with self._lock:
            now = self._clock()
            if not self.counts.unreported or (not force and now - self._last_report < self._report_every):
                return
            count, self.counts.unreported, self._last_report = self.counts.unreported, 0, now
        if why:
            log.warning("Dropped %d notification(s): %s (%d dropped since start).", count, why, self.counts.dropped)
        else:
            log.warning("Dropped %d notification(s) while the message bus was away or slow.", count)
