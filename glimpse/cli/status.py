"""`glimpse status`: a running node's version, work in progress, task queue, and the health of its database and
stores, read from its detailed health check (/healthcheck?detailed=true, JSON), which only an administrator gets."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from glimpse.config import Settings


def add_parser(sub: Any, config_args: Callable[[argparse.ArgumentParser], None]) -> None:
    status = sub.add_parser("status", help="a running node's version, work in progress, task queue and health")
    config_args(status)
    status.add_argument("--url", help="the node's URL (default: http://<bind_host>:<bind_port> of the configuration)")
    status.add_argument(
        "--token", default=os.environ.get("OS_AUTH_TOKEN"), help="an administrator's Keystone token ($OS_AUTH_TOKEN)"
    )
    status.add_argument("--json", action="store_true", help="print the node's answer as JSON")
    status.add_argument("--timeout", type=float, default=30.0, metavar="S", help="seconds to wait for the node (30)")


def node_url(settings: Settings) -> str:
    host = settings.bind_host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://[{host}]:{settings.bind_port}" if ":" in host else f"http://{host}:{settings.bind_port}"


class StatusError(Exception):
    pass


def fetch(url: str, token: str | None, timeout: float) -> tuple[bool, dict[str, Any]]:
    """(healthy, the node's figures and checks); StatusError when the node cannot tell."""
    headers = {"Accept": "application/json"}
    if token:
        headers["X-Auth-Token"] = token
    try:
        response = httpx.get(f"{url.rstrip('/')}/healthcheck", params={"detailed": "true"}, headers=headers,
                             timeout=timeout)  # fmt: skip
    except httpx.HTTPError as exc:
        raise StatusError(f"{url} does not answer: {exc}") from None
    if response.status_code not in (200, 503):
        raise StatusError(f"{url} answered {response.status_code}: {response.text.strip()[:300]}")
    try:
        body = response.json()
    except ValueError:
        raise StatusError(f"{url} did not answer JSON: is it a Glimpse node?") from None
    node = body.get("glimpse") if isinstance(body, dict) else None
    if not isinstance(node, dict):
        raise StatusError(f"{url} gave no node status: is it a Glimpse node?")
    return response.status_code == 200, node


def _show(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def render(node: dict[str, Any], healthy: bool, out: Console) -> None:
    summary = Table(title=f"Glimpse node {node.get('node', '?')}", show_header=False)
    summary.add_column("what")
    summary.add_column("value")
    summary.add_row("health", "[green]OK[/green]" if healthy else "[red]UNHEALTHY[/red]")
    summary.add_row("version", _show(node.get("version")))
    summary.add_row("workers", _show(node.get("workers")))
    summary.add_row("uploads in progress", _show(node.get("uploads_in_progress")))
    summary.add_row("imports in progress", _show(node.get("imports_in_progress")))
    tasks = node.get("tasks") or {}
    summary.add_row("tasks pending", _show(tasks.get("pending")))
    summary.add_row("tasks processing", _show(tasks.get("processing")))
    summary.add_row("oldest pending task", f"{_show(tasks.get('oldest_pending_age'))} s" if tasks else "-")
    out.print(summary)
    checks = Table(title="Checks")
    for column in ("component", "state", "details"):
        checks.add_column(column)
    for check in node.get("checks") or []:
        state = "[green]OK[/green]" if check.get("available") else f"[red]{check.get('reason')}[/red]"
        checks.add_row(str(check.get("component")), state, str(check.get("details")))
    out.print(checks)


def run(args: argparse.Namespace, settings: Settings, console: Console) -> int:
    url = args.url or node_url(settings)
    try:
        healthy, node = fetch(url, args.token, args.timeout)
    except StatusError as exc:
        console.print(f"[red]glimpse status: {exc}[/red]")
        return 2
    if args.json:
        print(json.dumps(node, indent=2, sort_keys=True))
    else:
        render(node, healthy, Console())
    return 0 if healthy else 1
