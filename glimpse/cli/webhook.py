"""`glimpse webhook list|create|delete|deliver`: webhooks for operators, and one round of deliveries for cron."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from glimpse.auth.context import RequestContext
from glimpse.domain.webhook_delivery import Deliverer
from glimpse.domain.webhooks import WebhookService
from glimpse.errors import GlimpseError
from glimpse.logsafe import redact

COMMANDS = ("list", "create", "delete", "deliver")


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config_args: Callable[[argparse.ArgumentParser], None]
) -> None:
    webhook = sub.add_parser("webhook", help="webhooks: image and member events sent as CloudEvents")
    commands = webhook.add_subparsers(dest="webhook_command", required=True)
    listing = commands.add_parser("list", help="every webhook, or one project's")
    listing.add_argument("--project", metavar="P", help="only this project's")
    listing.add_argument("--json", action="store_true", help="print JSON")
    create = commands.add_parser("create", help="add a webhook (a project's, or --global for every project's events)")
    create.add_argument("url")
    create.add_argument("--secret", required=True, help="the HMAC-SHA256 key (16 characters or more)")
    owner = create.add_mutually_exclusive_group(required=True)
    owner.add_argument("--project", metavar="P", help="the project whose events it receives")
    owner.add_argument("--global", dest="is_global", action="store_true", help="every project's events")
    create.add_argument("--events", metavar="E,E", help="event types or groups (image, image.member); default all")
    create.add_argument("--description", default="")
    delete = commands.add_parser("delete", help="remove a webhook and its waiting events")
    delete.add_argument("webhook_id")
    deliver = commands.add_parser("deliver", help="send the due events (a sender runs in every API process too)")
    deliver.add_argument("--once", action="store_true", required=True, help="one round, then exit (for cron)")
    deliver.add_argument("--limit", type=int, default=1000, metavar="N", help="at most N attempts (1000)")
    for command in (listing, create, delete, deliver):
        config_args(command)


def run(args: argparse.Namespace, service: WebhookService, deliverer: Deliverer, admin: RequestContext,
        out: Console) -> int:  # fmt: skip
    """admin: the operator's context (the cli acts as an administrator)."""
    try:
        return _run(args, service, deliverer, admin, out)
    except GlimpseError as exc:
        out.print(f"[red]glimpse: {redact(exc.message)}[/red]", soft_wrap=True)
        return 1


def _run(args: argparse.Namespace, service: WebhookService, deliverer: Deliverer, admin: RequestContext,
         out: Console) -> int:  # fmt: skip
    command = args.webhook_command
    if command == "deliver":
        sent, failed = deliverer.run_once(max(1, args.limit))
        out.print(f"Webhook deliveries: {sent} delivered, {failed} failed (retried later or given up).")
        return 0
    if command == "delete":
        service.delete(admin, args.webhook_id)
        out.print(f"Webhook {args.webhook_id} deleted.")
        return 0
    if command == "create":
        body: dict[str, object] = {"url": args.url, "secret": args.secret, "description": args.description}
        body.update({"global": True} if args.is_global else {"project_id": args.project})
        if args.events:
            body["events"] = [e.strip() for e in args.events.split(",") if e.strip()]
        created = service.create(admin, body)
        out.print(f"Webhook {created.id} created for {created.project_id or 'every project'}: {created.url}")
        return 0
    hooks = [w for w in service.list(admin) if args.project is None or w.project_id == args.project]
    if args.json:
        rows = [{"id": w.id, "project_id": w.project_id, "url": w.url, "events": list(w.events),
                 "enabled": w.enabled, "description": w.description} for w in hooks]  # fmt: skip
        print(json.dumps(rows, indent=2))
        return 0
    table = Table(title="Webhooks")
    for column in ("id", "project", "url", "events", "enabled"):
        table.add_column(column)
    for w in hooks:
        table.add_row(
            w.id, w.project_id or "(global)", w.url, ",".join(w.events) or "all", "yes" if w.enabled else "no"
        )
    out.print(table)
    return 0
