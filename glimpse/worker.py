"""The background runner of tasks (imports) inside each API process."""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta

from glimpse.domain.imports import ImportService

log = logging.getLogger(__name__)


class TaskWorker:
    """Claims and runs tasks one at a time until stopped; idle, it looks again every `poll` seconds."""

    def __init__(self, imports: ImportService, abandoned_after: float = 120.0, poll: float = 1.0) -> None:
        self.imports = imports
        self.poll = poll
        self.abandoned_after = timedelta(seconds=abandoned_after)
        self.sweep_every = min(30.0, abandoned_after / 4)
        self.name = f"{imports.node}/{os.getpid()}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="glimpse-tasks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.sweep_every
                    swept = self.imports.sweep_abandoned(self.abandoned_after)
                    if swept:
                        log.warning("Recovered %d upload(s) whose process had died", swept)
                busy = self.imports.run_one(self.name)
            except Exception:  # the database may be away for a moment: keep the worker alive
                log.exception("The task worker failed")
                busy = False
            if not busy:
                self._stop.wait(self.poll)
