"""The background runner of tasks (imports) inside each API process.

Up to `max_workers` tasks run at once (Glance's [taskflow_executor] max_workers), each in a thread of
its own, so one slow source never holds up another import. A loop thread claims tasks while a slot is
free, keeps this process's pinned tasks alive, and sweeps what dead processes left behind.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from glimpse import logs
from glimpse.db.session import unreachable
from glimpse.domain.entities import Task
from glimpse.domain.image_cache import CacheService
from glimpse.domain.import_claim import process_name
from glimpse.domain.import_runner import ImportRunner

log = logging.getLogger(__name__)
_database_away = logs.Occasional(log)


def turn_failed(logger: logging.Logger, what: str, exc: BaseException) -> None:
    """A background loop's turn failed; the next turn tries again. A database away fails every turn alike (about one
    a second): a line a minute says so. Any other failure is logged with its traceback."""
    if unreachable(exc):
        reason = str(exc).split("\n")[0]
        _database_away.warning(what, "%s: the database cannot be reached (%s); trying again.", what, reason)
    else:
        logger.exception("%s", what)


class TaskWorker:
    def __init__(
        self,
        runner: ImportRunner,
        max_workers: int = 10,
        poll: float = 1.0,
        tracking: Callable[[], AbstractContextManager[object]] | None = None,
    ) -> None:
        """tracking: entered while a task runs (the metrics' imports in progress)."""
        self.runner = runner
        self.tracking = tracking or nullcontext
        self.poll = poll
        self.max_workers = max_workers
        timing = runner.timing
        self.sweep_every = min(30.0, timing.stale_after.total_seconds() / 4)
        self.touch_every = timing.heartbeat_every
        self._slots = threading.Semaphore(max_workers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="glimpse-tasks", daemon=True)
        self.name = ""

    def start(self) -> None:
        self.name = process_name(self.runner.node)  # after any fork: the name carries this process's id
        self._thread.start()

    def stop(self) -> None:
        """Stop claiming; running tasks are daemon threads: a task cut short is taken over after a restart."""
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        next_sweep = next_touch = 0.0
        while not self._stop.is_set():
            busy = False
            try:
                now = time.monotonic()
                if now >= next_touch:
                    next_touch = now + self.touch_every
                    self.runner.tasks.touch_pinned(self.name)
                if now >= next_sweep:
                    next_sweep = now + self.sweep_every
                    swept = self.runner.sweep(self.name)
                    if swept:
                        log.warning("Recovered %d upload(s) whose process had died", swept)
                busy = self._claim_while_free()
            except Exception as exc:  # the database may be away for a moment: keep the worker alive
                turn_failed(log, "The task worker failed", exc)
            self._stop.wait(0.05 if busy else self.poll)

    def _claim_while_free(self) -> bool:
        claimed = False
        while self._slots.acquire(blocking=False):
            try:
                task = self.runner.claim_next(self.name)
            except BaseException:
                self._slots.release()
                raise
            if task is None:
                self._slots.release()
                return claimed
            threading.Thread(target=self._run, args=(task,), name=f"glimpse-task-{task.id[:8]}", daemon=True).start()
            claimed = True
        return claimed

    def _run(self, task: Task) -> None:
        """The task's lines name the request that created it, its user and its project."""
        context = {"request_id": task.request_id, "user_id": task.user_id, "project_id": task.owner}
        with logs.bound(context):
            try:
                with self.tracking():
                    self.runner.run(task)
            except Exception:
                log.exception("Task %s failed unexpectedly", task.id)
            finally:
                self._slots.release()


class CachePrefetcher:
    """The image cache's background thread in each API process: caches an image as soon as it is queued
    (PUT /v2/cache/{id}, like Glance's cache worker) and every `interval` seconds runs the sweep (queued images
    left over, copies of images no longer active, clean, prune). Several processes of a node may run it at once:
    the cache lets one writer per image through and prunes under a node lock."""

    def __init__(self, cache: CacheService, interval: float) -> None:
        self.cache = cache
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="glimpse-cache", daemon=True)

    def start(self) -> None:
        self.cache.on_queue = self._wake.set
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        next_sweep = time.monotonic()
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.interval
                    self.cache.sweep()
                else:
                    self.cache.prefetch_queued()
            except Exception as exc:  # the database or the store may be away for a moment: keep the thread alive
                turn_failed(log, "The image cache's prefetcher failed", exc)
            self._wake.wait(max(0.0, next_sweep - time.monotonic()))
            self._wake.clear()


class Periodic:
    """Runs `run` every `interval` seconds in a thread of each API process, for work the database shares out among
    them (a lease, claims): the scheduled retention runs, the server's retries of data a delete left."""

    def __init__(self, run: Callable[[], object], interval: float, name: str, what: str) -> None:
        self.run = run
        self.interval = interval
        self.what = what
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"glimpse-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run()
            except Exception as exc:  # the database may be away for a moment: the next turn tries again
                turn_failed(log, f"{self.what} failed", exc)
