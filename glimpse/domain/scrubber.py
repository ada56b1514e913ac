"""The scrubber: removes the data of images deleted under delayed_delete, as glance-scrubber does, and the data
an immediate deletion left (its store failed or was away, or its process died before removing it).

Each image is claimed (ScrubQueue.claim) before its data is touched, so several scrubbers (processes or
nodes on one database) share the work and never delete the same copy at once; a thread beats the claim
while a store deletes. A store that fails leaves the image pending_delete, for the next run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from glimpse.domain.entities import Location, ScrubClaim
from glimpse.domain.import_claim import process_name
from glimpse.domain.ports import ScrubQueue, StoreRegistry
from glimpse.errors import ClaimLost, Conflict, GlimpseError, NotFound
from glimpse.logsafe import redact_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScrubTiming:
    """scrub_time and scrub_pool_size as Glance names them; stale_after: when a silent scrubber is dead."""

    scrub_time: int = 0
    pool_size: int = 1
    stale_after: timedelta = timedelta(seconds=60)


@dataclass
class ScrubReport:
    deleted: list[str] = field(default_factory=list)  # images now deleted
    copies: int = 0  # copies of data removed
    failed: dict[str, str] = field(default_factory=dict)  # image id -> why it stays pending
    busy: int = 0  # images another scrubber holds


class Scrubber:
    def __init__(self, queue: ScrubQueue, stores: StoreRegistry, node: str, timing: ScrubTiming) -> None:
        self.queue = queue
        self.stores = stores
        self.name = process_name(node)
        self.timing = timing
        self._lock = threading.Lock()

    def run(self, stop: threading.Event | None = None) -> ScrubReport:
        """One pass over every image due now. Once `stop` is set, the images being scrubbed finish and no other
        is claimed: the rest waits, untouched, for the next run."""
        return self._pass(lambda: self.queue.due(timedelta(seconds=self.timing.scrub_time)), stop)

    def run_leftovers(self, older_than: timedelta) -> ScrubReport:
        """One pass over only the data deletions could not remove (their store away or failing, their process
        killed), left longer than `older_than`: what `glimpse serve` retries by itself, delayed delete aside."""
        report = self._pass(lambda: self.queue.leftovers(older_than), None, quiet=True)
        if report.copies or report.failed:  # one line a pass, not one per image while a store stays away
            examples = "".join(f"; {image_id}: {why}" for image_id, why in list(report.failed.items())[:3])
            log.log(
                logging.WARNING if report.failed else logging.INFO,
                "Data earlier deletes left: %d copies removed, %d image(s) still waiting for their store%s",
                report.copies, len(report.failed), examples,
            )  # fmt: skip
        return report

    def _pass(self, due_now: Callable[[], list[str]], stop: threading.Event | None, quiet: bool = False) -> ScrubReport:
        stop = stop or threading.Event()
        report = ScrubReport()
        seen: set[str] = set()
        while not stop.is_set():
            due = [i for i in due_now() if i not in seen]
            if not due:
                break
            seen.update(due)
            with ThreadPoolExecutor(self.timing.pool_size, thread_name_prefix="glimpse-scrub") as pool:
                list(pool.map(lambda i: None if stop.is_set() else self._scrub(i, report, quiet), due))
        return report

    def restore(self, image_id: str, *, from_bin: bool = False, max_images: int | None = None) -> str:
        """Back to the status it had (active for delayed delete), only when every copy of its data is still in its
        store; from_bin and max_images as ScrubQueue.restore has them. Returns the status restored."""

        def check(copies: list[Location]) -> None:
            for location in copies:
                try:
                    self.stores.for_location(location.url, location.metadata).size(location.url)
                except NotFound:
                    raise Conflict(
                        f"Cannot restore image {image_id}: its data at {redact_url(location.url)} is missing."
                    ) from None
                except GlimpseError as exc:
                    raise Conflict(
                        f"Cannot restore image {image_id}: its data at {redact_url(location.url)} cannot be "
                        f"checked now ({exc.message})."
                    ) from None

        return self.queue.restore(image_id, self.timing.stale_after, check, from_bin=from_bin, max_images=max_images)

    def purge(self, image_id: str) -> bool:
        """A binned image leaves the bin for good now, and its data is removed at once; False when that data
        waits for the next scrub (a store failed, or another scrubber is removing it). NotFound when not in the bin."""
        self.queue.expire(image_id)
        report = ScrubReport()
        self._scrub(image_id, report)
        return image_id in report.deleted

    def _scrub(self, image_id: str, report: ScrubReport, quiet: bool = False) -> None:
        """quiet: a store's failure is only in the report (the caller logs a summary)."""
        claim = self.queue.claim(image_id, self.name, self.timing.stale_after)
        if claim is None:
            with self._lock:
                report.busy += 1
            return
        try:
            with self._beating(claim) as lost:
                problems = []
                for location_id, location in self.queue.start_deleting(claim):
                    if lost.is_set():
                        raise ClaimLost(f"The scrub of image {image_id} was taken over by another scrubber.")
                    try:
                        self.stores.for_location(location.url, location.metadata).delete(location.url)
                    except GlimpseError as exc:
                        log.log(logging.DEBUG if quiet else logging.WARNING, "Scrub of image %s: %s not deleted: %s",
                                image_id, redact_url(location.url), exc)  # fmt: skip
                        problems.append(f"{redact_url(location.url)}: {exc.message}")
                        continue
                    self.queue.copy_deleted(claim, location_id)
                    with self._lock:
                        report.copies += 1
                if problems:
                    self.queue.release(claim)
                    with self._lock:
                        report.failed[image_id] = "; ".join(problems)
                    return
                if self.queue.finish(claim) == "deleted":
                    log.info("Image %s scrubbed: deleted", image_id)
                    with self._lock:
                        report.deleted.append(image_id)
        except ClaimLost as exc:
            log.warning("%s", exc.message)
            with self._lock:
                report.busy += 1
        except Exception as exc:  # the database away: this image waits for the next run
            log.exception("Scrub of image %s failed", image_id)
            try:
                self.queue.release(claim)
            except Exception:  # its heartbeat stops: another scrubber takes it over once stale
                log.warning("Could not release the scrub of image %s", image_id, exc_info=True)
            with self._lock:
                report.failed[image_id] = str(exc)

    @contextmanager
    def _beating(self, claim: ScrubClaim) -> Iterator[threading.Event]:
        """Beat the claim from a thread while a store deletes (one delete may take longer than stale_after);
        the event is set once the claim is lost."""
        stop, lost = threading.Event(), threading.Event()
        every = max(self.timing.stale_after.total_seconds() / 4, 0.05)

        def beat() -> None:
            while not stop.wait(every):
                try:
                    if not self.queue.beat(claim):
                        lost.set()
                        return
                except Exception:  # the database away for a moment: the next beat tries again
                    log.warning("Heartbeat of the scrub of image %s failed", claim.image_id, exc_info=True)

        thread = threading.Thread(target=beat, name=f"glimpse-scrub-beat-{claim.image_id[:8]}", daemon=True)
        thread.start()
        try:
            yield lost
        finally:
            stop.set()
            thread.join()
