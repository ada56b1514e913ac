from __future__ import annotations

import logging
import threading
import time

import pytest

from glimpse.messaging.queue import Payload, QueuedNotifier


class Bus:
    """What the sending thread calls: it may hang (a broker away) or refuse."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Payload]] = []
        self.open = threading.Event()
        self.open.set()
        self.refuse = False

    def send(self, priority: str, event_type: str, payload: Payload) -> None:
        self.open.wait()
        if self.refuse:
            raise ConnectionError("broker unreachable")
        self.sent.append((priority, event_type, payload))


def wait_for(condition: object, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)
    assert condition()  # type: ignore[operator]


def test_events_go_out_in_order_from_another_thread() -> None:
    bus = Bus()
    notifier = QueuedNotifier(lambda: bus.send, capacity=10)
    for i in range(5):
        notifier.notify("info", "image.create", {"n": i})
    notifier.notify("error", "image.upload", "it failed")
    wait_for(lambda: len(bus.sent) == 6)
    assert [p for _, _, p in bus.sent[:5]] == [{"n": i} for i in range(5)]
    assert bus.sent[5] == ("error", "image.upload", "it failed")
    assert notifier.counts.sent == 6 and notifier.counts.dropped == 0
    notifier.close()


def test_a_hanging_bus_never_blocks_the_caller_and_overflow_is_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = Bus()
    bus.open.clear()  # the broker is away: the sending thread hangs in its send
    notifier = QueuedNotifier(lambda: bus.send, capacity=3, report_every=3600)
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, "glimpse.messaging.queue"):
        for i in range(100):
            notifier.notify("info", "image.update", {"n": i})
    assert time.perf_counter() - start < 0.5  # 100 calls, none of them waited
    assert 96 <= notifier.counts.dropped <= 97  # 3 wait in the queue, maybe 1 in the thread's hands
    assert len([r for r in caplog.records if "Dropped" in r.getMessage()]) == 1  # once per interval
    caplog.clear()
    with caplog.at_level(logging.WARNING, "glimpse.messaging.queue"):
        bus.open.set()  # back: what was kept goes out, then what was dropped meanwhile is reported
        wait_for(lambda: len(bus.sent) >= 3)
        wait_for(lambda: any("Dropped" in r.getMessage() for r in caplog.records))
    assert [p for _, _, p in bus.sent][:1] == [{"n": 0}]
    notifier.notify("info", "image.update", {"n": "later"})
    wait_for(lambda: bus.sent[-1][2] == {"n": "later"})
    notifier.close()


def test_a_refused_event_is_dropped_and_the_next_one_still_goes() -> None:
    bus = Bus()
    notifier = QueuedNotifier(lambda: bus.send)
    bus.refuse = True
    notifier.notify("info", "image.create", {"n": 1})
    wait_for(lambda: notifier.counts.dropped == 1)
    bus.refuse = False
    notifier.notify("info", "image.create", {"n": 2})
    wait_for(lambda: bus.sent == [("info", "image.create", {"n": 2})])
    notifier.close()


def test_a_bus_that_cannot_be_built_drops_and_is_tried_again() -> None:
    bus = Bus()
    attempts: list[int] = []

    def connect() -> object:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("no transport")
        return bus.send

    notifier = QueuedNotifier(connect)  # type: ignore[arg-type]
    notifier.notify("info", "image.create", {"n": 1})
    wait_for(lambda: notifier.counts.dropped == 1)
    notifier.notify("info", "image.create", {"n": 2})
    wait_for(lambda: bus.sent == [("info", "image.create", {"n": 2})])
    notifier.close()


def test_the_listener_hears_each_event_sent_or_dropped_and_cannot_stop_the_sending() -> None:
    bus = Bus()
    bus.open.clear()  # the first event hangs in the thread; one more fills the queue
    notifier = QueuedNotifier(lambda: bus.send, capacity=1)
    heard: list[str] = []

    def listener(result: str) -> None:
        heard.append(result)
        if len(heard) == 1:
            raise RuntimeError("a broken listener")

    notifier.listener = listener
    for i in range(5):
        notifier.notify("info", "image.create", {"n": i})
    wait_for(lambda: notifier.counts.dropped >= 3)
    bus.open.set()
    wait_for(lambda: notifier.counts.sent == 5 - notifier.counts.dropped)
    wait_for(lambda: len(heard) == 5)
    assert heard.count("dropped") == notifier.counts.dropped and heard.count("sent") == notifier.counts.sent
    notifier.notify("info", "image.create", {"n": 5})  # the thread survived the listener's failure
    wait_for(lambda: heard.count("sent") == notifier.counts.sent == len(bus.sent))
    notifier.close()
