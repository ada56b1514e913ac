"""uvicorn's supervisor of several worker processes, with the signals an operator of Glance expects.

uvicorn's own answers SIGHUP by replacing every worker: each old one is stopped with SIGTERM, which cuts
the uploads and downloads it still serves once graceful_shutdown_timeout passes. Here SIGHUP is passed
on to the workers, each of which reloads the policy file and the log levels in place (app.py), so no
connection is dropped. On SIGTERM (or SIGINT) the supervisor closes its copy of the listening socket
first, so that new connections are refused while the workers drain theirs.

Workers are forked from the supervisor, which has already imported the application's code (gunicorn's
--preload): those pages stay shared copy-on-write, where uvicorn's spawned workers each imported and held
their own copy (about 75 MiB each). Only code is shared: each worker still calls the app factory after the
fork and so opens its own database engine, pools and threads. A supervisor with more than one thread (a
store library's native threads, say) spawns instead, since a fork copies locks another thread may hold.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from socket import socket

import anyio
from uvicorn import _subprocess
from uvicorn.config import Config
from uvicorn.supervisors import multiprocess
from uvicorn.supervisors.multiprocess import SIGNALS, Multiprocess

from glimpse.forking import single_threaded

log = logging.getLogger("glimpse")


def _forked_worker(config: Config, target: Callable[..., None], sockets: list[socket]) -> None:
    for sig in SIGNALS:  # the supervisor's handlers only queue signals for its own loop
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until the app's lifespan handles it, as in app_from_environment
    _subprocess.subprocess_started(config, target, sockets, stdin_fileno=None)


def preload(config: Config) -> None:
    """Import here what each worker would otherwise import on its own as it starts serving (uvicorn's event
    loop, and anyio, whose parts Starlette reaches are imported lazily), so that it is shared with the rest."""
    config.get_loop_factory()
    for name in dir(anyio):
        getattr(anyio, name)


def worker_process(config: Config, target: Callable[..., None], sockets: list[socket]) -> BaseProcess:
    """A worker forked from this process when that is safe, otherwise spawned as uvicorn does."""
    if not single_threaded():
        return _subprocess.get_subprocess(config, target, sockets)
    # Objects imported so far are never collected: the collector would otherwise write to (and so unshare)
    # every page holding one in each worker.
    gc.freeze()
    kwargs = {"config": config, "target": target, "sockets": sockets}
    return multiprocessing.get_context("fork").Process(target=_forked_worker, kwargs=kwargs)


class Supervisor(Multiprocess):
    on_reload: Callable[[], None] = staticmethod(lambda: None)

    def __init__(self, config: Config, sockets: list[socket]) -> None:
        super().__init__(config, sockets)
        preload(config)
        # uvicorn builds each worker (at start and to replace a dead one) through this module-level function.
        setattr(multiprocess, "get_subprocess", worker_process)  # noqa: B010  # not in its typed exports

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
