"""`glimpse dashboard sessions [--revoke KEY | --revoke-user USER]`: the dashboard's logged-in sessions, for
operators; a revoked session's next request lands on the login page, on every node."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from glimpse.domain.session_records import SessionStore


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config_args: Callable[[argparse.ArgumentParser], None]
) -> None:
    dashboard = sub.add_parser("dashboard", help="the web dashboard")
    commands = dashboard.add_subparsers(dest="dashboard_command", required=True)
    sessions = commands.add_parser("sessions", help="list the active sessions, or revoke some")
    revoke = sessions.add_mutually_exclusive_group()
    revoke.add_argument("--revoke", metavar="KEY", help="end the session with this key (as listed)")
    revoke.add_argument("--revoke-user", metavar="USER", help="end every session of this user (id or name)")
    config_args(sessions)


def run(args: argparse.Namespace, store: SessionStore, out: Console) -> int:
    if args.revoke:
        if not store.delete(args.revoke):
            out.print(f"[red]glimpse: no session with key {args.revoke}[/red]", soft_wrap=True)
            return 1
        out.print(f"Session {args.revoke} revoked.")
        return 0
    if args.revoke_user:
        out.print(f"{store.delete_user(args.revoke_user)} session(s) of {args.revoke_user} revoked.", soft_wrap=True)
        return 0
    table = Table("Key", "User", "Project", "Since (UTC)", "Until (UTC)")
    for s in store.active():
        since, until = (t.strftime("%Y-%m-%d %H:%M:%S") for t in (s.created_at, s.expires_at))
        table.add_row(s.key, s.user_name or "", s.project_name or s.project_id or "", since, until)
    out.print(table)
    return 0
