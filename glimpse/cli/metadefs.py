"""`glimpse db load-metadefs|unload-metadefs|export-metadefs`: the catalog from and to Glance's JSON files."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from rich.console import Console

DEFAULT_DIR = Path("/etc/glance/metadefs")  # where Glance installs its definitions

COMMANDS = ("load-metadefs", "unload-metadefs", "export-metadefs")


def add_parsers(
    db: argparse._SubParsersAction[argparse.ArgumentParser], config_args: Callable[[argparse.ArgumentParser], None]
) -> None:
    load = db.add_parser(
        "load-metadefs",
        help="load Glance's metadata definitions JSON files into the catalog",
        description="Loads each *.json file of DIR (default /etc/glance/metadefs) as one namespace. A namespace "
        "already in the catalog is skipped unless --merge adds what it lacks; with --merge, --prefer-new also "
        "replaces existing definitions with the files' and --overwrite drops the namespace and loads it anew.",
    )
    load.add_argument("path", nargs="?", metavar="DIR", type=Path, default=DEFAULT_DIR)
    load.add_argument("--merge", action="store_true", help="add to namespaces already in the catalog")
    load.add_argument("--prefer-new", "--prefer_new", dest="prefer_new", action="store_true",
                      help="with --merge: the files' definitions replace the catalog's")  # fmt: skip
    load.add_argument("--overwrite", action="store_true", help="with --merge: drop each namespace and load it anew")
    unload = db.add_parser("unload-metadefs", help="remove every namespace and resource type from the catalog")
    export = db.add_parser("export-metadefs", help="write the catalog as Glance's JSON files, one per namespace")
    export.add_argument("path", metavar="DIR", type=Path)
    for parser in (load, unload, export):
        config_args(parser)


class LoadReport(Protocol):
    loaded: list[str]
    skipped: list[str]
    failed: list[str]


class MetadefFiles(Protocol):
    """Glance-format metadefs files to and from the catalog (db/metadef_files.py; built by app.py)."""

    def load(self, path: Path, *, merge: bool, prefer_new: bool, overwrite: bool) -> LoadReport: ...

    def unload(self) -> int: ...

    def export(self, path: Path) -> list[Path]: ...


def run(args: argparse.Namespace, files: MetadefFiles, console: Console) -> int:
    if args.db_command == "load-metadefs":
        report = files.load(args.path, merge=args.merge, prefer_new=args.prefer_new, overwrite=args.overwrite)
        console.print(f"Loaded {len(report.loaded)} namespace(s) from {args.path}.")
        if report.skipped:
            console.print(f"Already in the catalog, skipped (use --merge): {', '.join(report.skipped)}")
        if report.failed:
            console.print(f"[red]Files that could not be loaded: {', '.join(report.failed)}[/red]")
            return 1
        return 0
    if args.db_command == "unload-metadefs":
        console.print(f"Removed {files.unload()} namespace(s) and every resource type.")
        return 0
    written = files.export(args.path)
    console.print(f"Wrote {len(written)} namespace file(s) to {args.path}.")
    return 0
