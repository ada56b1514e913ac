"""`glimpse bin list|restore|purge|retention` and `glimpse image latest|families|deprecate|obsolete|undeprecate`:
the recycle bin, image families and deprecation on the configured database, as an administrator."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from glimpse.auth.context import RequestContext
from glimpse.domain import deprecation
from glimpse.domain.entities import Image
from glimpse.domain.patch import MEDIA_V21
from glimpse.errors import BadRequest, GlimpseError
from glimpse.logsafe import redact

if TYPE_CHECKING:  # the services are built only when a command runs
    from glimpse.app import Services

_DURATION = re.compile(r"^(\d+)\s*([smhdw]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config_args: Callable[[argparse.ArgumentParser], None]
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """`glimpse bin ...` and `glimpse image ...`; returns the image command's verbs, for others to add theirs."""
    recycle = sub.add_parser("bin", help="the recycle bin: deleted images kept for a retention period")
    commands = recycle.add_subparsers(dest="bin_command", required=True)
    listing = commands.add_parser("list", help="images in the bin, with when they go for good")
    listing.add_argument("--project", metavar="P", help="only this project's (default: every project's)")
    restore = commands.add_parser("restore", help="bring an image back to the status it had, members intact")
    restore.add_argument("image_id", metavar="IMAGE")
    purge = commands.add_parser("purge", help="remove an image from the bin for good, its data at once")
    purge.add_argument("image_id", metavar="IMAGE")
    retention = commands.add_parser("retention", help="show or set a project's retention period")
    retention.add_argument("project", nargs="?", help="the project (none: every project with its own period)")
    retention.add_argument("--set", metavar="PERIOD", help="seconds, or with a unit: 30m, 12h, 7d, 2w; 0: no bin")
    retention.add_argument("--default", action="store_true", help="follow [recycle_bin] retention_period again")
    image = sub.add_parser("image", help="upload an image (resumable); image families and deprecation")
    verbs = image.add_subparsers(dest="image_command", required=True)
    latest = verbs.add_parser("latest", help="the family's newest active image that is not deprecated")
    latest.add_argument("family")
    latest.add_argument("--project", metavar="P", help="as that project sees it (default: as an administrator)")
    families = verbs.add_parser("families", help="every family with its latest image")
    families.add_argument("--project", metavar="P", help="as that project sees them")
    deprecate = verbs.add_parser("deprecate", help="mark an image deprecated, now or at a time")
    obsolete = verbs.add_parser("obsolete", help="mark an image obsolete (downloads refused), now or at a time")
    for verb in (deprecate, obsolete):
        verb.add_argument("image_id", metavar="IMAGE")
        verb.add_argument("--replacement", metavar="IMAGE", help="the image to use instead")
        verb.add_argument("--at", metavar="TIME", help="ISO 8601 time it takes effect (default: now)")
    deprecate.add_argument("--obsolete-at", metavar="TIME", help="and obsolete from this time")
    undeprecate = verbs.add_parser("undeprecate", help="remove every deprecation setting of an image")
    undeprecate.add_argument("image_id", metavar="IMAGE")
    for command in (listing, restore, purge, retention, latest, families, deprecate, obsolete, undeprecate):
        config_args(command)
    return verbs


def parse_period(text: str) -> int:
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise BadRequest(f"Invalid period {text!r}: use seconds or a number with s, m, h, d or w.")
    return int(match.group(1)) * UNITS[match.group(2)]


def _wide(out: Console) -> None:
    if not out.is_terminal:  # piped or logged: whole image ids rather than an 80-column fold
        out.width = max(out.width, 160)


def run_bin(args: argparse.Namespace, services: Services, ctx: RequestContext, out: Console) -> int:
    _wide(out)
    recycle = services.bin
    try:
        if args.bin_command == "list":
            params = {"owner": [args.project]} if args.project else {}
            found, _ = recycle.list(ctx, {**params, "limit": ["1000"]})
            table = Table(title="Recycle bin")
            for column in ("image id", "name", "owner", "size", "restores to", "deleted (UTC)", "goes (UTC)"):
                table.add_column(column, no_wrap=column == "image id")
            for b in found:
                table.add_row(b.image.id, b.image.name or "", b.image.owner or "", str(b.image.size or 0),
                              b.former_status, _time(b.deleted_at), _time(b.expires_at))  # fmt: skip
            out.print(table)
        elif args.bin_command == "restore":
            image = recycle.restore(ctx, args.image_id)
            out.print(f"Image {image.id} restored: it is {image.status} again.")
        elif args.bin_command == "purge":
            done = recycle.purge(ctx, args.image_id)
            out.print(
                f"Image {args.image_id} purged" + ("." if done else "; its data goes at the next `glimpse scrub`.")
            )
        else:
            return _retention(args, services, ctx, out)
    except GlimpseError as exc:
        out.print(f"[red]glimpse: {redact(exc.message)}[/red]", soft_wrap=True)
        return 1
    return 0


def _retention(args: argparse.Namespace, services: Services, ctx: RequestContext, out: Console) -> int:
    recycle = services.bin
    if args.project is None:
        table = Table(title=f"Retention periods (default {recycle.default_retention} s)")
        table.add_column("project")
        table.add_column("seconds", justify="right")
        for project, seconds in recycle.all_retention(ctx).items():
            table.add_row(project, str(seconds))
        out.print(table)
        return 0
    if args.set is not None and args.default:
        raise BadRequest("--set and --default cannot be used together.")
    if args.set is not None or args.default:
        value = None if args.default else parse_period(args.set)
        shown = recycle.set_retention(ctx, args.project, {"retention_period": value})
    else:
        shown = recycle.retention(ctx, args.project)
    out.print(
        f"Project {args.project}: deleted images stay {shown['retention_period']} s in the bin ({shown['source']})."
    )
    return 0


def run_image(args: argparse.Namespace, services: Services, admin: RequestContext, out: Console) -> int:
    _wide(out)
    project = getattr(args, "project", None)
    ctx = (
        admin
        if project is None
        else RequestContext(project_id=project, user_id="glimpse-cli", roles=frozenset({"reader", "member"}))
    )
    try:
        if args.image_command == "latest":
            out.print(_image_table(services.families.latest(ctx, args.family)))
        elif args.image_command == "families":
            table = Table(title="Image families")
            for column in ("family", "latest image", "name", "created (UTC)"):
                table.add_column(column, no_wrap=True)
            for family in services.families.list(ctx):
                image = family.latest
                table.add_row(
                    family.name, *((image.id, image.name or "", _time(image.created_at)) if image else ("-", "", ""))
                )
            out.print(table)
        else:
            patch = _deprecation_patch(args)
            image = services.images.update(ctx, args.image_id, patch, MEDIA_V21)
            out.print(_image_table(image))
    except GlimpseError as exc:
        out.print(f"[red]glimpse: {redact(exc.message)}[/red]", soft_wrap=True)
        return 1
    return 0


def _deprecation_patch(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.image_command == "undeprecate":
        return [{"op": "add", "path": f"/{deprecation.STATUS}", "value": "active"}]
    changes: dict[str, str] = {}
    if args.replacement:
        changes[deprecation.REPLACEMENT] = args.replacement
    key = deprecation.DEPRECATE_AT if args.image_command == "deprecate" else deprecation.OBSOLETE_AT
    if args.at:
        changes[key] = args.at
    else:
        changes[deprecation.STATUS] = "deprecated" if args.image_command == "deprecate" else "obsolete"
    if getattr(args, "obsolete_at", None):
        changes[deprecation.OBSOLETE_AT] = args.obsolete_at
    return [{"op": "add", "path": f"/{name}", "value": value} for name, value in changes.items()]


def _image_table(image: Image) -> Table:
    table = Table(show_header=False)
    table.add_column("field")
    table.add_column("value")
    for name in ("id", "name", "status", "visibility", "owner", "size", "created_at"):
        value = getattr(image, name)
        table.add_row(name, _time(value) if name == "created_at" else str(value if value is not None else ""))
    for name, value in sorted(image.properties.items()):
        table.add_row(name, value)
    return table


def _time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"
