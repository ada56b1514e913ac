"""`glimpse db backup|restore|purge`: the embedded database's online backup and restore, and purging
rows deleted long ago."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from glimpse.config import Settings

COMMANDS = ("backup", "restore", "purge")


def _max_rows(text: str) -> int:
    value = int(text)
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError("must be a positive number of rows, or -1 for no limit")
    return value


def _age(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be a non-negative number of days")
    return value


def add_parsers(
    db: argparse._SubParsersAction[argparse.ArgumentParser], config_args: Callable[[argparse.ArgumentParser], None]
) -> None:
    backup, restore = (
        db.add_parser(name, help=text, description=description)
        for name, text, description in (
            (
                "backup",
                "an online, consistent copy of the embedded SQLite database",
                "Copies the embedded database with SQLite's backup API while the service keeps running. "
                "For MariaDB/MySQL or PostgreSQL use mysqldump --single-transaction or pg_dump.",
            ),
            (
                "restore",
                "put a backup of the embedded database back (refused while a server or scrubber uses it)",
                "Replaces the embedded database with FILE; the database it replaces is kept beside it. "
                "Run `glimpse store verify` afterwards to find images whose data is gone.",
            ),
        )
    )
    for command in (backup, restore):
        command.add_argument("file", type=Path, metavar="FILE")
    purge = db.add_parser(
        "purge",
        help="remove rows deleted more than N days ago, as glance-manage db purge",
        description="Removes the properties, tags, members and locations of images deleted more than N days "
        "ago and tasks expired more than N days ago, in batches; each deleted image's id stays reserved.",
    )
    purge.add_argument("--age-in-days", type=_age, default=30, metavar="N", help="age of the rows to remove (30)")
    purge.add_argument(
        "--max-rows", type=_max_rows, default=100, metavar="N", help="rows per batch (100); -1: one batch per table"
    )
    for command in (backup, restore, purge):
        config_args(command)


def run(args: argparse.Namespace, settings: Settings, out: Console) -> int:
    from glimpse.assembly.operations import backup_database, purge_database, restore_database

    if args.db_command == "backup":
        copy = backup_database(settings, args.file)
        out.print(
            f"Backed up {copy.images} image record(s) (schema revision {copy.revision}) to {copy.path} "
            f"({copy.size} bytes); the copy passed SQLite's integrity check.",
            soft_wrap=True,
        )
        return 0
    if args.db_command == "restore":
        copy, kept = restore_database(settings, args.file)
        out.print(
            f"Restored {copy.images} image record(s) (schema revision {copy.revision}) from {copy.path}."
            + (f" The replaced database is kept as {kept}." if kept else ""),
            soft_wrap=True,
        )
        out.print("Run `glimpse store verify` to find images whose data is no longer in the stores.")
        return 0
    removed = purge_database(settings, args.age_in_days, args.max_rows)
    for table, count in removed.items():
        out.print(f"Purged {count} row(s) from {table}.")
    return 0
