"""`glimpse audit list|purge` and `glimpse retention list|create|delete|run [--dry-run]`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from glimpse.auth.context import RequestContext
from glimpse.domain.audit import AuditService
from glimpse.domain.retention import RetentionService

ConfigArgs = Callable[[argparse.ArgumentParser], None]
FILTERS = {
    "target_id": "changes to this target (an image id, a namespace)",
    "project": "changes by this project or to what it owns",
    "user": "changes by this user (retention-policy:<id> for a policy)",
    "action": "this action only (image.update, image.delete, image.member.create, ...)",
    "since": "at or after this time (ISO 8601, UTC)",
    "until": "before this time (ISO 8601, UTC)",
    "marker": "the page after this record id",
    "limit": "records per page (25)",
}


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser], config_args: ConfigArgs) -> None:
    audit = sub.add_parser("audit", help="the audit log of every change").add_subparsers(
        dest="audit_command", required=True
    )
    listing = audit.add_parser("list", help="changes, newest first")
    for name, text in FILTERS.items():
        listing.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="V", help=text)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    purge = audit.add_parser(
        "purge",
        help="remove audit rows older than N days ([audit] retention_days by default); the purge is logged",
    )
    purge.add_argument("--age-in-days", type=int, metavar="N", help="age of the rows to remove")
    retention = sub.add_parser("retention", help="retention policies").add_subparsers(
        dest="retention_command", required=True
    )
    retention.add_parser("list", help="every retention policy")
    create = retention.add_parser("create", help="a policy of a project, a family (os_family), or both")
    create.add_argument("--project", metavar="ID", help="images owned by this project")
    create.add_argument("--family", metavar="NAME", help="images whose os_family property is NAME")
    create.add_argument("--keep-newest", type=int, metavar="N", help="keep the N newest images")
    create.add_argument("--max-age-days", type=int, metavar="D", help="delete unreferenced images older than D days")
    delete = retention.add_parser("delete", help="remove a policy")
    delete.add_argument("policy_id")
    run = retention.add_parser("run", help="run the policies now (on one node at a time)")
    run.add_argument("--dry-run", action="store_true", help="print what would be deleted and why; change nothing")
    run.add_argument("--policy", metavar="ID", help="this policy only")
    for command in (listing, purge, *retention.choices.values()):
        config_args(command)


def run_audit(args: argparse.Namespace, service: AuditService, ctx: RequestContext, default_days: int) -> int:
    out = Console()
    if args.audit_command == "purge":
        days = args.age_in_days if args.age_in_days is not None else default_days
        if not days:
            Console(stderr=True).print("glimpse: give --age-in-days or set [audit] retention_days.")
            return 2
        removed = service.purge(ctx, days)
        out.print(f"Purged {removed} audit row(s) older than {days} day(s).")
        return 0
    params = {name: [value] for name in FILTERS if (value := getattr(args, name)) is not None}
    entries, more = service.list(ctx, params)
    if args.json:
        for entry in entries:
            print(json.dumps({**entry.__dict__, "created_at": str(entry.created_at)}, default=str))
        return 0
    table = Table(title="Audit log")
    for column in ("id", "time", "user", "project", "action", "target", "changes"):
        table.add_column(column)
    for entry in entries:
        changes = ", ".join(f"{k}: {v[0]!r} -> {v[1]!r}" for k, v in entry.changes.items())
        table.add_row(
            str(entry.id), str(entry.created_at), entry.user_id or "-", entry.project_id or "-", entry.action,
            f"{entry.target_type} {entry.target_id}", changes,
        )  # fmt: skip
    out.print(table)
    if more and entries:
        out.print(f"More: --marker {entries[-1].id}")
    return 0


def run_retention(args: argparse.Namespace, service: RetentionService, ctx: RequestContext) -> int:
    out = Console()
    command = args.retention_command
    if command == "create":
        body = {
            k: v
            for k, v in (
                ("project_id", args.project), ("os_family", args.family), ("keep_newest", args.keep_newest),
                ("max_age_days", args.max_age_days),
            )
            if v is not None
        }  # fmt: skip
        created = service.create(ctx, body)
        out.print(f"Created retention policy {created.id}.")
        return 0
    if command == "delete":
        service.delete(ctx, args.policy_id)
        out.print(f"Deleted retention policy {args.policy_id}.")
        return 0
    if command == "list":
        table = Table(title="Retention policies")
        for column in ("id", "project", "os_family", "keep newest", "max age (days)"):
            table.add_column(column)
        for p in service.list(ctx):
            table.add_row(
                p.id, p.project_id or "-", p.os_family or "-", _or_dash(p.keep_newest), _or_dash(p.max_age_days)
            )
        out.print(table)
        return 0
    report = service.run(ctx, dry_run=args.dry_run, policy_id=args.policy)
    if not report.acted:
        out.print("Another node holds the retention lease: nothing done here.")
        return 1
    for d in report.decisions:
        verb = ("would delete" if report.dry_run else "delete") if d.delete else "keep"
        out.print(
            f"{verb} {d.image_id} ({d.name or '-'}, created {d.created_at}) [policy {d.policy_id}]: {d.reason}",
            soft_wrap=True,
        )
    if not report.dry_run:
        out.print(f"Deleted {len(report.deleted)} image(s).")
    for image_id, why in report.failed.items():
        out.print(f"not deleted {image_id}: {why}")
    return 0


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)
