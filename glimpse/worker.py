"""The background runner of tasks (imports) inside each API process."""

from __future__ import annotations

import logging
import os
import threading

from glimpse.domain.imports import ImportService

log = logging.getLogger(__name__)


class TaskWorker:
    """Claims and runs tasks one at a time until stopped; idle, it looks again every `poll` seconds."""

    def __init__(self, imports: ImportService, poll: float = 1.0) -> None:
        self.imports = imports
        self.poll = poll
        self.name = f"{imports.node}/{os.getpid()}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="glimpse-tasks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.imports.run_one(self.name)
            except Exception:  # the database may be away for a moment: keep the worker alive
                log.exception("The task worker failed to claim a task")
                busy = False
            if not busy:
                self._stop.wait(self.poll)
