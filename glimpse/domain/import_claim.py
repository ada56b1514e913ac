"""A running import's claim on its task: heartbeats by time, per-step deadlines and cancellation.

The worker thread does the long work (download, staging read, store writes, decompression, qemu-img);
a small thread of the claim beats the task's heartbeat every few seconds whatever that work is doing,
and after each beat asks whether the import is still wanted (the image may have been deleted). What
it learns (claim lost, image gone, a step past its deadline) the worker sees at its next `check`, which
every chunk of data and every wait passes through.

A step stuck past its deadline is reported once; the beats then stop after a grace period, so a worker
wedged in a system call looks dead to the other processes, whose claim fences it out.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from glimpse.domain.entities import Fence
from glimpse.errors import ClaimLost, Conflict, GlimpseError

log = logging.getLogger(__name__)
T = TypeVar("T")
MIB = 1024 * 1024


@dataclass(frozen=True)
class ImportTiming:
    """How often a running task beats, when others treat it as dead, and how long one step may take."""

    heartbeat_every: float = 5.0
    stale_after: timedelta = timedelta(seconds=60)
    step_timeout: float = 3600.0
    max_attempts: int = 5  # claims of one task (takeovers included) before it is given up
    upload_abandoned_after: timedelta = timedelta(seconds=120)  # an upload or staging with no data that long


class ImportStopped(Conflict):
    """The import is no longer wanted (its image was deleted or changed): it stops and cleans up."""


class StepTimeout(GlimpseError):
    """One step of the import took longer than its deadline."""


def process_name(node: str) -> str:
    """The name a process claims tasks under (also what a pinned task names)."""
    return f"{node}/{os.getpid()}"


HELD = "/starting"  # the end of a holding name (never a process's)


def holding_name(node: str) -> str:
    """What a task is pinned to while the request that creates it is still setting its image up: a name no worker
    claims under, so no worker can run an import before its image is importing. It starts like the process's name,
    so the process's restart (or the orphan sweep, if the request died) fails a task it never let go."""
    return f"{process_name(node)}{HELD}"


def is_held(pinned_node: str | None) -> bool:
    return bool(pinned_node and pinned_node.endswith(HELD))


class Claim:
    """Beats `beat` every `every` seconds from its own thread while the import runs (use as a context)."""

    def __init__(
        self,
        fence: Fence,
        beat: Callable[[str | None], bool],
        still_wanted: Callable[[], str | None],
        timing: ImportTiming,
    ) -> None:
        self.fence = fence
        self._beat = beat
        self._still_wanted = still_wanted
        self._timing = timing
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"glimpse-beat-{fence.task_id[:8]}", daemon=True)
        self._message: str | None = None
        self._step = "starting"
        self._deadline: float | None = None
        self.failure: GlimpseError | None = None

    def __enter__(self) -> Claim:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self._timing.heartbeat_every + 5)

    @property
    def lost(self) -> bool:
        return isinstance(self.failure, ClaimLost)

    # --- the beating thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        grace_until: float | None = None
        while not self._stop.wait(self._timing.heartbeat_every):
            now = time.monotonic()
            if self._deadline is not None and now > self._deadline and self.failure is None:
                self.failure = StepTimeout(
                    f"The import step '{self._step}' took longer than {self._timing.step_timeout:.0f} s; it stopped."
                )
                grace_until = now + 3 * self._timing.heartbeat_every
            if grace_until is not None and now > grace_until:
                log.warning("Task %s is stuck in %s: no longer beating", self.fence.task_id, self._step)
                return  # wedged: let the claim go stale so that another process fences this one out
            self.beat_once()
            if self.lost:
                return

    def beat_once(self) -> None:
        try:
            if not self._beat(self._message):
                self.failure = ClaimLost(f"Task {self.fence.task_id} was taken over by another process.")
                return
            reason = self._still_wanted()
        except Exception:  # the database may be away for a moment: try again at the next beat
            log.warning("Heartbeat of task %s failed", self.fence.task_id, exc_info=True)
            return
        if reason is not None and self.failure is None:
            self.failure = ImportStopped(reason)

    # --- what the worker calls ------------------------------------------------------------------------
    def check(self) -> None:
        if self.failure is not None:
            raise self.failure

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """A long step with its own deadline (the configured step timeout)."""
        self.check()
        self._step, self._deadline = name, time.monotonic() + self._timing.step_timeout
        try:
            yield
        finally:
            self._deadline = None
        self.check()

    def watch(self, chunks: Iterable[bytes], verb: str) -> Iterator[bytes]:
        """Pass chunks through, checking the claim at each one and reporting progress at the next beat."""
        done = 0
        for chunk in chunks:
            self.check()
            done += len(chunk)
            self._message = f"{verb} {done // MIB} MiB"
            yield chunk
        self.check()

    def wait(self, work: Callable[[], T]) -> T:
        """Run a blocking call (qemu-img, decompression) in a helper thread, checking the claim meanwhile.

        When the claim fails first, the call is left to finish on its own (its output lies in the
        attempt's scratch folder, removed with it) and the failure is raised at once."""
        outcome: list[T] = []
        error: list[BaseException] = []

        def target() -> None:
            try:
                outcome.append(work())
            except BaseException as exc:  # handed to the waiting thread
                error.append(exc)

        helper = threading.Thread(target=target, name=f"glimpse-step-{self.fence.task_id[:8]}", daemon=True)
        helper.start()
        while helper.is_alive():
            helper.join(timeout=0.5)
            self.check()
        if error:
            raise error[0]
        return outcome[0]
