"""The serving process's life: the workers it starts, SIGHUP's reload, SIGTERM's drain, and the stop."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette

from glimpse import logs
from glimpse.assembly import log
from glimpse.auth.policy import Policy
from glimpse.config import Settings
from glimpse.log_options import read_log_settings
from glimpse.messaging.queue import QueuedNotifier
from glimpse.streaming import Transfers
from glimpse.webhook_worker import WebhookSender
from glimpse.worker import CachePrefetcher, Periodic, TaskWorker

# Seconds past graceful_shutdown_timeout for stopped uploads to clean up (uvicorn's deadline is this later).
SHUTDOWN_MARGIN = 10


GC_YOUNG_THRESHOLD = 50_000


def settle_garbage_collector() -> None:
    """For a serving process, once its app is built (not for every app a test builds: frozen objects are never
    freed). Start-up's objects (most of a worker's 90 MiB: SQLAlchemy, oslo.*, the schemas) go where the collector no
    longer walks them, so a full collection in the middle of a request does not visit them all; and a young
    collection runs every 50,000 allocations instead of 700, several times per list page (4 % of its CPU time
    in process). What a request leaves is still collected; only cycles wait a little longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def lifespan(
    settings: Settings,
    policy: Policy,
    worker: TaskWorker,
    prefetcher: CachePrefetcher | None,
    transfers: Transfers,
    notifier: QueuedNotifier | None,
    periodic: Sequence[Periodic] = (),
    webhooks: WebhookSender | None = None,
) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """Start the background work and the signal handlers; at the end, drain the transfers and stop it all."""

    @asynccontextmanager
    async def serving(_: Starlette) -> AsyncIterator[None]:
        worker.start()
        if prefetcher is not None:
            prefetcher.start()
        for job in periodic:
            job.start()
        if webhooks is not None:
            webhooks.start()
        _on_sighup(reloader(settings, policy))
        _stop_transfers_after(transfers, settings.graceful_shutdown_timeout)
        yield
        # uvicorn comes here once the connections closed, or when its own deadline passed.
        stopped = transfers.stop()
        if stopped:
            log.warning("Shutting down: %d upload(s) did not finish in time and go back to queued", stopped)
        if not await transfers.drained(timeout=SHUTDOWN_MARGIN):
            log.error("Shutting down: transfers still running; the next start recovers their images")
        worker.stop()
        if prefetcher is not None:
            prefetcher.stop()
        for job in periodic:
            job.stop()
        if webhooks is not None:
            webhooks.stop()
        if notifier is not None:
            notifier.close()  # what is still queued gets a moment to go out

    return serving


def reloader(settings: Settings, policy: Policy) -> Callable[[], None]:
    """What SIGHUP does: the policy file and the log levels (debug, default_log_levels) read again; a file
    that no longer reads leaves everything as it was."""

    def reload() -> None:
        try:
            fresh = read_log_settings(settings.config_files, settings.overrides)
            if fresh.log_config_append:
                logs.configure(fresh)
            else:
                logs.apply_levels(fresh)
            policy_file = policy.reload()
        except Exception as exc:  # a typo in a file must not stop a serving process
            log.error("SIGHUP: reload failed, the previous policy and log levels stay: %s", exc)
            return
        log.info("SIGHUP: reloaded policy file %s and log levels (debug %s)", policy_file or "(none)", fresh.debug)

    return reload


def _on_sighup(reload: Callable[[], None]) -> None:
    """SIGHUP calls `reload` in this event loop; not where signals cannot be caught (a test's thread)."""
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    except (RuntimeError, ValueError, NotImplementedError):
        return


def _stop_transfers_after(transfers: Transfers, timeout: int) -> None:
    """On SIGTERM (or SIGINT), `timeout` seconds later the transfers still running stop, ahead of uvicorn's
    own deadline (a few seconds later), so that an upload answers 503 after cleaning up rather than being
    cancelled. uvicorn's handler keeps running: it stops accepting and waits for the connections."""
    if not timeout:
        return
    loop = asyncio.get_running_loop()

    def stop() -> None:
        stopped = transfers.stop()
        log.warning("graceful_shutdown_timeout (%d s) passed: %d upload(s) stopped, back to queued", timeout, stopped)

    armed: list[asyncio.TimerHandle] = []

    def wrap(previous: Callable[[int, object], object] | int | None) -> Callable[[int, object], None]:
        def handler(sig: int, frame: object) -> None:
            if not armed:
                armed.append(loop.call_later(timeout, stop))
            if callable(previous):
                previous(sig, frame)

        return handler

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, wrap(signal.getsignal(sig)))  # type: ignore[arg-type]
    except ValueError:  # not the main thread (a test's server): no signals to catch
        return
