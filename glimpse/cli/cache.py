"""`glimpse cache list|queue|delete|clear|prune|clean`: this node's image cache (image_cache_dir), as Glance's
`glance cache-*` commands manage it through the API, run on the node itself (as glance-cache-manage,
glance-cache-pruner and glance-cache-cleaner were)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from glimpse.auth.context import RequestContext
from glimpse.domain.image_cache import CacheService
from glimpse.errors import ConfigError, GlimpseError

TARGETS = {"both": "", "cache": "cache", "queue": "queue"}


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config_args: Callable[[argparse.ArgumentParser], None]
) -> None:
    cache = sub.add_parser("cache", help="this node's image cache").add_subparsers(dest="cache_command", required=True)
    listing = cache.add_parser("list", help="cached and queued images, and the node's hits and misses")
    queue = cache.add_parser(
        "queue", help="queue active images for caching (the running server caches them within its interval)"
    )
    queue.add_argument("image_ids", nargs="+", metavar="IMAGE_ID")
    delete = cache.add_parser("delete", help="remove images from the cache and the queue")
    delete.add_argument("image_ids", nargs="+", metavar="IMAGE_ID")
    clear = cache.add_parser("clear", help="empty the cache, the queue or both")
    clear.add_argument("--target", choices=tuple(TARGETS), default="both")
    prune = cache.add_parser("prune", help="remove least recently used copies until within image_cache_max_size")
    clean = cache.add_parser("clean", help="remove invalid copies and copies stalled past image_cache_stall_time")
    for command in (listing, queue, delete, clear, prune, clean):
        config_args(command)


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def run(args: argparse.Namespace, service: CacheService, ctx: RequestContext) -> int:
    if service.cache is None:
        raise ConfigError("image_cache_dir is not set: this node has no image cache.")
    out = Console()
    if not out.is_terminal:  # piped or logged: whole image ids rather than an 80-column fold
        out.width = max(out.width, 132)
    command = args.cache_command
    if command == "list":
        state = service.state(ctx)
        table = Table(title="Cached images")
        for column in ("image id", "size", "hits", "last accessed (UTC)", "cached (UTC)"):
            table.add_column(column, justify="right" if column in ("size", "hits") else "left", no_wrap=True)
        for entry in state.cached:
            table.add_row(
                entry.image_id, str(entry.size), str(entry.hits), _time(entry.last_accessed), _time(entry.last_modified)
            )
        out.print(table)
        out.print(f"Queued: {', '.join(state.queued) or 'none'}", soft_wrap=True)
        counters = service.counters()
        out.print(f"Downloads served from the cache: {counters['hits']}; from a store (misses): {counters['misses']}")
        return 0
    if command in ("queue", "delete"):
        failed = 0
        act = service.queue if command == "queue" else service.delete
        for image_id in args.image_ids:
            try:
                act(ctx, image_id)
            except GlimpseError as exc:
                out.print(f"[red]{image_id}[/red]: {exc.message}", soft_wrap=True)
                failed += 1
            else:
                out.print(f"{image_id}: {'queued' if command == 'queue' else 'removed from the cache and the queue'}")
        return 1 if failed else 0
    if command == "clear":
        cleared = service.clear(ctx, TARGETS[args.target])
        out.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in cleared.items()))
    elif command == "prune":
        files, pruned = service.prune(ctx)
        out.print(f"Pruned {files} file(s), {pruned} byte(s).")
    else:
        service.clean(ctx)
        out.print("Cleaned invalid and stalled copies.")
    return 0
