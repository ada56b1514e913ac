"""`glimpse store migrate|verify|list`: move image data between stores and check it, with progress bars."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import Counter
from collections.abc import Callable

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from glimpse.config import Settings
from glimpse.domain.entities import Image
from glimpse.domain.stores import StoreMaintenance
from glimpse.logsafe import redact


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config_args: Callable[[argparse.ArgumentParser], None]
) -> None:
    store = sub.add_parser("store", help="image data in the stores").add_subparsers(dest="store_command", required=True)
    migrate = store.add_parser(
        "migrate",
        help="copy every image's data from one store to another while the service keeps serving",
        description="Copies each image's data from store FROM to store TO and records the new location; "
        "images already in TO are skipped, so an interrupted run is resumed by running it again.",
    )
    migrate.add_argument("--from", dest="source", required=True, metavar="FROM", help="store id to copy from")
    migrate.add_argument("--to", dest="target", required=True, metavar="TO", help="store id to copy to")
    migrate.add_argument("--verify", action="store_true", help="read each new copy back and check its checksums")
    migrate.add_argument(
        "--delete-source", action="store_true", help="then remove the FROM location and its data (never the last one)"
    )
    verify = store.add_parser("verify", help="re-read image data and check sizes and checksums")
    verify.add_argument("--store", metavar="S", help="only the copies in this store")
    listing = store.add_parser("list", help="the configured stores")
    gc = store.add_parser(
        "gc",
        help="find (and with --apply remove) data in the stores that nothing references",
        description="Lists the data in the stores no image or upload refers to; with --apply removes it. Safe while "
        "uploads run on any node: data of uploads, stagings and imports in progress is never taken.",
    )
    gc.add_argument("--store", metavar="S", help="only this store")
    gc.add_argument("--apply", action="store_true", help="remove the data (the default is a dry run)")
    usage = store.add_parser(
        "usage", help="per store: logical bytes (every image's copy), physical bytes (data held), the saving"
    )
    usage.add_argument("--json", action="store_true", help="print JSON instead of a table")
    for command in (migrate, verify, listing, gc, usage):
        config_args(command)


class RichProgress:
    """One bar for the whole run and one for the image being read, both in bytes; the first counts images."""

    def __init__(self, progress: Progress, images: int, total_bytes: int, verb: str, unit: str = "images") -> None:
        self.progress = progress
        self.unit = unit
        self.verb = verb
        self.images = images
        self.done = 0
        self.overall: TaskID = progress.add_task(self._label(), total=total_bytes or None)
        self.current: TaskID | None = None

    def _label(self) -> str:
        return f"[bold]{self.verb}[/bold] {self.done}/{self.images} {self.unit}"

    def start_image(self, image: Image, total: int) -> None:
        label = image.name or image.id
        self.current = self.progress.add_task(f"  {label[:40]}", total=total or None)

    def advance(self, nbytes: int) -> None:
        self.progress.advance(self.overall, nbytes)
        if self.current is not None:
            self.progress.advance(self.current, nbytes)

    def end_image(self, image: Image, outcome: str) -> None:
        if self.current is not None:
            self.progress.remove_task(self.current)
            self.current = None
        self.done += 1
        self.progress.update(self.overall, description=self._label())


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def run(args: argparse.Namespace, settings: Settings, maintenance: StoreMaintenance) -> int:
    out = Console()
    if args.store_command == "list":
        return _list(out, maintenance)
    if args.store_command == "migrate":
        return _migrate(args, out, maintenance)
    if args.store_command == "gc":
        return _gc(args, out, maintenance)
    if args.store_command == "usage":
        return _usage(args, out, maintenance)
    return _verify(args, out, maintenance)


def _list(out: Console, maintenance: StoreMaintenance) -> int:
    registry = maintenance.stores
    table = Table(title="Stores")
    for column in ("id", "type", "default", "read-only", "weight", "description"):
        table.add_column(column)
    for name, store in registry.stores.items():
        info = registry.info[name]
        table.add_row(
            name,
            store.type,
            "yes" if name == registry.default else "",
            "yes" if store.read_only else "",
            str(info.weight),
            info.description,
        )
    out.print(table)
    return 0


def _migrate(args: argparse.Namespace, out: Console, maintenance: StoreMaintenance) -> int:
    maintenance.check_migration(args.source, args.target)
    images = list(maintenance.images(args.source))
    with _progress(out) as bars:
        passes = 2 if args.verify else 1  # with --verify each copy is read back
        total = passes * sum(i.size or 0 for i in images)
        reporter = RichProgress(bars, len(images), total, f"{args.source} -> {args.target}")
        outcomes = maintenance.migrate(
            args.source,
            args.target,
            verify=args.verify,
            delete_source=args.delete_source,
            progress=reporter,
            images=images,
        )
    counts = Counter(o.action for o in outcomes)
    failed = [o for o in outcomes if o.action == "failed"]
    for outcome in failed:
        out.print(f"[red]not migrated[/red] {outcome.image_id}: {redact(outcome.detail)}", soft_wrap=True)
    removed = sum(o.source_deleted for o in outcomes)
    out.print(
        f"Migrated from {args.source} to {args.target}: {counts['copied']} copied, {counts['skipped']} skipped, "
        f"{counts['failed']} failed" + (f"; {removed} removed from {args.source}" if removed else ""),
        soft_wrap=True,
    )
    return 1 if failed else 0


def _verify(args: argparse.Namespace, out: Console, maintenance: StoreMaintenance) -> int:
    images = list(maintenance.images(args.store))
    with _progress(out) as bars:
        registry = maintenance.stores
        copies = [
            (i, loc)
            for i in images
            for loc in i.locations
            if args.store is None or registry.store_id(loc.url, loc.metadata) == args.store
        ]
        reporter = RichProgress(bars, len(copies), sum(i.size or 0 for i, _ in copies), "verifying", "copies")
        checked, findings = maintenance.verify(args.store, reporter)
    orphans = maintenance.unreferenced(args.store)
    for f in findings:
        copy = f"image {f.image_id} in store {f.store_id or '?'}"
        out.print(f"[red]{f.problem}[/red] {copy}: {redact(f.detail)}", soft_wrap=True)
    for f in orphans:
        where_data = f"data {redact(f.url)} in store {f.store_id}"
        out.print(f"[yellow]unreferenced[/yellow] {where_data}: {f.detail}", soft_wrap=True)
    where = f" in store {args.store}" if args.store else ""
    kinds = Counter(f.problem for f in findings)
    detail = ", ".join(f"{n} {problem}" for problem, n in sorted(kinds.items()))
    out.print(
        f"Verified {checked} cop{'y' if checked == 1 else 'ies'} of image data{where}: {len(findings)} problem(s)"
        + (f" ({detail})" if detail else "")
        + f"; {len(orphans)} unreferenced file(s).",
        soft_wrap=True,
    )
    return 1 if findings or orphans else 0


def _gc(args: argparse.Namespace, out: Console, maintenance: StoreMaintenance) -> int:
    collected, stale_pins = maintenance.gc(args.store, apply=args.apply)
    for item in collected:
        data = f"{redact(item.finding.url)} in store {item.finding.store_id}"
        if item.removed:
            out.print(f"[green]removed[/green] {data}", soft_wrap=True)
        elif item.kept_because:
            out.print(f"[yellow]kept[/yellow] {data}: {item.kept_because}", soft_wrap=True)
        else:
            out.print(f"would remove {data}", soft_wrap=True)
    removed = sum(item.removed for item in collected)
    candidates = sum(not item.removed and not item.kept_because for item in collected)
    kept = len(collected) - removed - candidates
    verb = "released" if args.apply else "to release"
    out.print(
        (f"Removed {removed}" if args.apply else f"Would remove {candidates} (dry run: --apply removes)")
        + f" unreferenced piece(s) of data; {kept} kept; {len(stale_pins)} stale upload reference(s) {verb}.",
        soft_wrap=True,
    )
    return 0


def _usage(args: argparse.Namespace, out: Console, maintenance: StoreMaintenance) -> int:
    usages = maintenance.usage()
    if args.json:
        print(json.dumps([{**dataclasses.asdict(u), "saved": u.saved} for u in usages]))
        return 0
    table = Table(title="Image data per store")
    for column in ("store", "copies", "shared copies", "logical bytes", "physical bytes", "saved bytes", "saved"):
        table.add_column(column, justify="left" if column == "store" else "right")
    for usage in usages:
        ratio = f"{100 * usage.saved / usage.logical:.1f}%" if usage.logical else "-"
        table.add_row(
            usage.store, str(usage.copies), str(usage.shared_copies), str(usage.logical), str(usage.physical),
            str(usage.saved), ratio,
        )  # fmt: skip
    out.print(table)
    return 0
