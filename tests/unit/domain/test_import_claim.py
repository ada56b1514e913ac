"""glimpse.domain.import_claim: beats by time whatever the worker does, per-step deadlines, cancellation."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from glimpse.domain.entities import Fence
from glimpse.domain.import_claim import Claim, ImportStopped, ImportTiming, StepTimeout
from glimpse.errors import ClaimLost

FAST = ImportTiming(heartbeat_every=0.05, stale_after=timedelta(seconds=1), step_timeout=0.4)


def test_it_beats_while_a_blocking_call_runs() -> None:
    beats: list[str | None] = []
    with Claim(Fence("t", 1), lambda m: beats.append(m) is None, lambda: None, FAST) as claim:
        assert claim.wait(lambda: time.sleep(0.3) or 42) == 42  # as qemu-img would block
    assert len(beats) >= 3


def test_a_lost_claim_stops_the_work_at_the_next_chunk() -> None:
    owned = threading.Event()
    owned.set()

    def chunks():  # type: ignore[no-untyped-def]
        while True:
            time.sleep(0.01)
            yield b"x"

    with Claim(Fence("t", 1), lambda m: owned.is_set(), lambda: None, FAST) as claim:
        stream = claim.watch(chunks(), "Received")
        next(stream)
        owned.clear()  # another process claims the task
        with pytest.raises(ClaimLost):
            for _ in stream:
                pass
        assert claim.lost


def test_a_deleted_image_cancels_and_a_stuck_step_times_out() -> None:
    with Claim(Fence("t", 1), lambda m: True, lambda: "Image i was deleted", FAST) as claim:
        with pytest.raises(ImportStopped, match="deleted"):
            claim.wait(lambda: time.sleep(5))
    with Claim(Fence("t", 1), lambda m: True, lambda: None, FAST) as claim:
        with pytest.raises(StepTimeout), claim.step("conversion"):
            claim.wait(lambda: time.sleep(5))
