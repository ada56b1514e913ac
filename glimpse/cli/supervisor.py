"""uvicorn's supervisor of several worker processes, with the signals an operator of Glance expects.

uvicorn's own answers SIGHUP by replacing every worker: each old one is stopped with SIGTERM, which cuts
the uploads and downloads it still serves once graceful_shutdown_timeout passes. Here SIGHUP is passed
on to the workers, each of which reloads the policy file and the log levels in place (app.py), so no
connection is dropped. On SIGTERM (or SIGINT) the supervisor closes its copy of the listening socket
first, so that new connections are refused while the workers drain theirs.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable

from uvicorn.supervisors.multiprocess import Multiprocess

log = logging.getLogger("glimpse")


class Supervisor(Multiprocess):
    on_reload: Callable[[], None] = staticmethod(lambda: None)

    def handle_hup(self) -> None:
        log.info("SIGHUP: the %d workers reload the policy file and log levels (no restart)", len(self.processes))
        self.on_reload()
        for process in self.processes:
            if process.pid is not None:
                try:
                    os.kill(process.pid, signal.SIGHUP)
                except ProcessLookupError:  # it died a moment ago; keep_subprocess_alive replaces it
                    continue

    def _stop_listening(self) -> None:
        for sock in self.sockets:
            sock.close()

    def handle_term(self) -> None:
        self._stop_listening()
        super().handle_term()

    def handle_int(self) -> None:
        self._stop_listening()
        super().handle_int()
