"""The background runner of tasks (imports) inside each API process.

Up to `max_workers` tasks run at once (Glance's [taskflow_executor] max_workers), each in a thread of
its own, so one slow source never holds up another import. A loop thread claims tasks while a slot is
free, keeps this process's pinned tasks alive, and sweeps what dead processes left behind.
"""

from __future__ import annotations

import logging
import threading
import time

from glimpse import logs
from glimpse.domain.entities import Task
from glimpse.domain.import_claim import process_name
from glimpse.domain.import_runner import ImportRunner

log = logging.getLogger(__name__)


class TaskWorker:
    def __init__(self, runner: ImportRunner, max_workers: int = 10, poll: float = 1.0) -> None:
        self.runner = runner
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
            except Exception:  # the database may be away for a moment: keep the worker alive
                log.exception("The task worker failed")
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
                self.runner.run(task)
            except Exception:
                log.exception("Task %s failed unexpectedly", task.id)
            finally:
                self._slots.release()
