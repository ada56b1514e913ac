"""`glimpse scrub [--daemon] [--restore IMAGE]`: glance-scrubber's work for delayed delete."""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Callable
from types import FrameType

from rich.console import Console

from glimpse.domain.scrubber import Scrubber, ScrubReport
from glimpse.errors import Conflict, NotFound
from glimpse.logsafe import redact


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config_args: Callable[[argparse.ArgumentParser], None]
) -> None:
    scrub = sub.add_parser(
        "scrub",
        help="remove the data of images deleted under delayed_delete or out of the recycle bin",
        description="Removes the data of images pending_delete for longer than scrub_time, of images whose "
        "recycle-bin period ended (and of store copies deleted under delayed_delete) and marks the images deleted; "
        "also the data an image's deletion could not remove (a store down). Several scrubbers may run at once.",
    )
    scrub.add_argument("-D", "--daemon", action="store_true", help="run every wakeup_time seconds until stopped")
    scrub.add_argument(
        "--restore", metavar="IMAGE", help="bring a pending_delete image back to active (a binned one: to its status)"
    )
    config_args(scrub)


def run(args: argparse.Namespace, scrubber: Scrubber, wakeup_time: int, out: Console) -> int:
    if args.restore and args.daemon:
        out.print("[red]glimpse: --restore and --daemon cannot be used together.[/red]")
        return 2
    if args.restore:
        try:
            status = scrubber.restore(args.restore)
        except (NotFound, Conflict) as exc:
            out.print(f"[red]glimpse: {redact(exc.message)}[/red]", soft_wrap=True)
            return 1
        out.print(f"Image {args.restore} restored: it is {status} again.")
        return 0
    if not args.daemon:
        return _summary(scrubber.run(), out)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    out.print(f"Scrubber running every {wakeup_time} s; SIGTERM stops it.")
    while not stop.is_set():
        try:
            _summary(scrubber.run(stop), out)
        except Exception as exc:  # the database away: the next run tries again
            out.print(f"[red]Scrub run failed: {redact(str(exc))}[/red]", soft_wrap=True)
        stop.wait(wakeup_time)
    out.print("Scrubber stopped.")
    return 0


def _summary(report: ScrubReport, out: Console) -> int:
    for image_id, why in sorted(report.failed.items()):
        out.print(f"[red]left for the next run[/red] {image_id}: {redact(why)}", soft_wrap=True)
    out.print(
        f"Scrubbed: {len(report.deleted)} image(s) deleted, {report.copies} cop{'y' if report.copies == 1 else 'ies'} "
        f"of data removed, {len(report.failed)} left for the next run, {report.busy} held by another scrubber.",
        soft_wrap=True,
    )
    return 1 if report.failed else 0
