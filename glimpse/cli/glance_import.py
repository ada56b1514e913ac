"""`glimpse db import-glance --from URL`: a Glance database's images into Glimpse's, with progress."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from rich.table import Table

from glimpse.cli.store import RichProgress, _progress
from glimpse.domain.glance_import import CREATED, FAILED, UNCHANGED, UPDATED, GlanceImport, ImportSummary
from glimpse.errors import ConfigError, GlimpseError
from glimpse.logsafe import redact, redact_url

LISTED = 50  # the ids a dry run names, at most


def add_parser(
    db: argparse._SubParsersAction[argparse.ArgumentParser], config_args: Callable[[argparse.ArgumentParser], None]
) -> None:
    command = db.add_parser(
        "import-glance",
        help="bring every image of a Glance database into Glimpse's",
        description="Reads the images, properties, tags, members, locations and deleted ids of a Glance "
        "database (MariaDB/MySQL, PostgreSQL or SQLite) and writes them, with the same ids, into the "
        "database of the configuration. Running it again writes only what changed in Glance.",
    )
    command.add_argument(
        "--from", dest="source", required=True, metavar="URL", help="Glance's [database] connection URL"
    )
    command.add_argument(
        "--verify", action="store_true", help="then re-read image data through the stores and check its checksums"
    )
    command.add_argument("--sample", type=int, metavar="N", help="with --verify: N images picked at random (all)")
    command.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    config_args(command)


class ImportBar:
    def __init__(self, progress: Progress, total: int, verb: str) -> None:
        self.progress = progress
        self.task: TaskID = progress.add_task(verb, total=total)

    def imported(self, image_id: str, action: str) -> None:
        self.progress.advance(self.task)


def run(args: argparse.Namespace, job: GlanceImport) -> int:
    out = Console()
    if args.sample is not None and (args.sample < 1 or not args.verify):
        raise ValueError("--sample N needs --verify and a positive N.")
    try:
        return _run(args, job, out)
    except ConfigError:
        raise  # refused before anything was written (unknown schema, unreachable): exit 2 with the reason
    except GlimpseError as exc:  # the Glance database went away mid-run: what was written stays
        out.print(f"[red]glimpse: {redact(exc.message)}[/red]", soft_wrap=True)
        return 1


def _run(args: argparse.Namespace, job: GlanceImport, out: Console) -> int:
    revision = job.check()
    total = job.count()
    out.print(f"Glance database {job.source.url} (schema {revision}): {total} image(s).")
    verb = "checking" if args.dry_run else "importing"
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=out
    ) as bars:
        summary = job.run(dry_run=args.dry_run, progress=ImportBar(bars, total, verb))
    _report(out, summary)
    if not args.verify:
        return 1 if summary.failures else 0
    sample = job.sample(args.sample)
    with _progress(out) as bars:
        reporter = RichProgress(bars, len(sample), sum(i.size or 0 for i in sample), "verifying")
        checked, findings = job.verify(sample, reporter)
    for f in findings:
        out.print(
            f"[red]{f.problem}[/red] image {f.image_id} at {redact_url(f.url)}: {redact(f.detail)}", soft_wrap=True
        )
    out.print(
        f"Verified {checked} cop{'y' if checked == 1 else 'ies'} of {len(sample)} image(s): "
        f"{len({f.image_id for f in findings})} image(s) with missing or different data."
    )
    if any(f.problem in ("unreadable", "unknown-store") for f in findings):
        out.print(
            "Glimpse's stores must read Glance's locations: the same [glance_store] filesystem_store_datadir "
            "for file://, the same Ceph pool, S3 bucket or Swift container and credentials for the others."
        )
    return 1 if findings or summary.failures else 0


def _report(out: Console, summary: ImportSummary) -> None:
    would = "would be " if summary.dry_run else ""
    table = Table(title=f"Images from Glance{' (dry run: nothing written)' if summary.dry_run else ''}")
    table.add_column("")
    table.add_column("images", justify="right")
    for label, action in ((f"{would}created", CREATED), (f"{would}updated", UPDATED), ("unchanged", UNCHANGED)):
        table.add_row(label, str(summary.actions[action]))
    if summary.failures:
        table.add_row("[red]failed[/red]", str(summary.actions[FAILED]))
    table.add_row("of which deleted ids (tombstones)", str(summary.tombstones))
    out.print(table)
    for image_id, why in summary.failures:
        out.print(f"[red]not imported[/red] {image_id}: {redact(why)}", soft_wrap=True)
    if summary.dry_run:
        for image_id, action in summary.changed[:LISTED]:
            out.print(f"  would be {action}: {image_id}")
        if len(summary.changed) > LISTED:
            out.print(f"  ... and {len(summary.changed) - LISTED} more")
