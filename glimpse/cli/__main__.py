"""The `glimpse` command: serve, status, db sync|version|import-glance|backup|restore|purge, quota set|show|list,
store migrate|verify|list|gc|usage, scrub, cache list|queue|delete|clear|prune|clean, audit list|purge,
retention list|create|delete|run, webhook list|create|delete|deliver, bin list|restore|purge|retention,
image upload|latest|families|deprecate|obsolete|undeprecate, dashboard sessions."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from glimpse import logs, logsafe
from glimpse.auth.context import RequestContext
from glimpse.cli import startup
from glimpse.config import Settings, load_settings
from glimpse.default_options import parse_size
from glimpse.errors import BadRequest, ConfigError, Forbidden, NotFound
from glimpse.logsafe import redact

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

log = logging.getLogger("glimpse")


def _console(**options: Any) -> Console:
    """A rich console, rich being imported on first use: `serve` never needs it, and whatever the supervisor
    imports stays in every worker it forks."""
    from rich.console import Console

    return Console(**options)


def _errors() -> Console:
    return _console(stderr=True)


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-file", action="append", default=[], metavar="F", help="glance-api.conf-style file")
    parser.add_argument("--config-dir", metavar="D", help="folder of *.conf files read after --config-file")
    parser.add_argument("--data-dir", metavar="DIR", help="folder of the embedded database and images")


QUOTA_FLAGS = {
    "images": "number of images (image_count_total)",
    "size": "bytes stored, units KB/MB/GB/TB allowed (image_size_total)",
    "staged": "bytes staged for import, units allowed (image_stage_total)",
    "uploads": "uploads in progress at once (image_count_uploading)",
}
QUOTA_NAMES = {
    "images": "image_count_total",
    "size": "image_size_total",
    "staged": "image_stage_total",
    "uploads": "image_count_uploading",
}


def build_parser(serving: bool = False) -> argparse.ArgumentParser:
    """The whole command line, or with `serving` only `serve`'s: the other commands' modules (their clients and
    tables) would otherwise be imported by the supervisor, and so counted in the RSS of every worker it forks."""
    parser = argparse.ArgumentParser(prog="glimpse", description="Glimpse image service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the Images API v2 server")
    _config_args(serve)
    serve.add_argument("--bind", dest="bind_host", metavar="ADDR", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", dest="bind_port", type=int, metavar="N", help="port to listen on (9292)")
    serve.add_argument("--workers", type=int, metavar="N", help="worker processes (1)")
    serve.add_argument("--log-file", metavar="F", help="log to this file ([DEFAULT] log_file)")
    serve.add_argument("--debug", action="store_true", default=None, help="log at DEBUG ([DEFAULT] debug)")
    serve.add_argument(
        "--log-format", choices=("text", "json"), help="text lines or one JSON object per line ([DEFAULT] use_json)"
    )
    if not serving:
        _other_commands(sub)
    return parser


def _other_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from glimpse.cli import audit as audit_cli
    from glimpse.cli import cache as cache_cli
    from glimpse.cli import dashboard_sessions as dashboard_cli
    from glimpse.cli import database as database_cli
    from glimpse.cli import glance_import as glance_import_cli
    from glimpse.cli import lifecycle as lifecycle_cli
    from glimpse.cli import metadefs as metadefs_cli
    from glimpse.cli import scrub as scrub_cli
    from glimpse.cli import status as status_cli
    from glimpse.cli import store as store_cli
    from glimpse.cli import upload as upload_cli
    from glimpse.cli import webhook as webhook_cli

    quota = sub.add_parser("quota", help="per-project quotas").add_subparsers(dest="quota_command", required=True)
    set_quota = quota.add_parser("set", help="set a project's limits (omitted ones stay; 'none' removes one)")
    set_quota.add_argument("project")
    for flag, help_text in QUOTA_FLAGS.items():
        set_quota.add_argument(f"--{flag}", metavar="N", help=help_text)
    show_quota = quota.add_parser("show", help="a project's limits and usage")
    show_quota.add_argument("project")
    quota.add_parser("list", help="every project with limits")
    for command in (set_quota, show_quota, quota.choices["list"]):
        _config_args(command)
    store_cli.add_parser(sub, _config_args)
    status_cli.add_parser(sub, _config_args)
    cache_cli.add_parser(sub, _config_args)
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    for name, text in (("sync", "create or upgrade the schema"), ("version", "print the schema revision")):
        _config_args(db.add_parser(name, help=text))
    glance_import_cli.add_parser(db, _config_args)
    metadefs_cli.add_parsers(db, _config_args)
    database_cli.add_parsers(db, _config_args)
    scrub_cli.add_parser(sub, _config_args)
    audit_cli.add_parsers(sub, _config_args)
    webhook_cli.add_parser(sub, _config_args)
    dashboard_cli.add_parser(sub, _config_args)
    upload_cli.add_parser(lifecycle_cli.add_parsers(sub, _config_args))


OVERRIDES = ("bind_host", "bind_port", "workers", "data_dir", "log_file", "debug", "log_format")


def _settings(args: argparse.Namespace, configure_logs: bool = False) -> Settings:
    overrides = {k: getattr(args, k, None) for k in OVERRIDES}
    settings = load_settings(args.config_file, args.config_dir, overrides)
    if configure_logs:
        try:
            logs.configure(settings.logging)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Logging cannot be set up as configured: {exc}") from None
    if settings.unknown_options:
        logging.getLogger("glimpse").warning(
            "Options Glimpse does not know, ignored: %s", ", ".join(settings.unknown_options)
        )
    if settings.no_effect_options:
        logging.getLogger("glimpse").info(
            "Glance options accepted, no effect in Glimpse: %s", ", ".join(settings.no_effect_options)
        )
    return settings


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


class _ServeOptions(TypedDict):
    """uvicorn.run's options common to one process and several workers."""

    host: str
    port: int
    log_level: str | None
    access_log: bool
    http: type[asyncio.Protocol]
    h11_max_incomplete_event_size: int
    log_config: None
    ws: Literal["none"]
    timeout_graceful_shutdown: int | None


def serve(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a reload arriving during start-up must not stop the server
    settings = _settings(args, configure_logs=True)
    if not settings.metrics.enabled:
        return _serve(args, settings)
    # Before anything imports prometheus-client, which reads the folder's variable once.
    from glimpse.metrics import multiprocess

    folder = multiprocess.prepare()
    try:
        return _serve(args, settings)
    finally:
        multiprocess.remove(folder)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from glimpse.app import SETTINGS_ENV, build_services, create_app
    from glimpse.assembly.lifecycle import SHUTDOWN_MARGIN, reloader, settle_garbage_collector
    from glimpse.assembly.notifications import build_events
    from glimpse.assembly.operations import hold_database
    from glimpse.auth.policy import Policy
    from glimpse.cli.http_protocol import HEAD_ENV, BoundedHttpToolsProtocol, head_bound
    from glimpse.cli.supervisor import Supervisor
    from glimpse.dashboard.web import BASE as DASHBOARD_BASE

    if not settings.auth_flavor and not _is_loopback(settings.bind_host) and not settings.allow_insecure_noauth_bind:
        raise ConfigError(
            f"Refusing to serve on {settings.bind_host} without authentication: anyone reaching it would be "
            "an administrator. Bind to 127.0.0.1, configure [paste_deploy] flavor = keystone, or set "
            "[DEFAULT] allow_insecure_noauth_bind = true."
        )
    hold_database(settings, "serve")
    policy = Policy(settings.policy_file, settings.policy_options)
    events = build_events(settings)
    services = build_services(settings, policy, events=events)
    recovered = services.images.recover()
    if recovered:
        log.warning("Recovered %d interrupted upload(s): the images are queued again.", recovered)
    resumed = services.runner.recover()
    if resumed:
        log.info("Resuming %d interrupted import(s).", resumed)
    quiet_terminal = settings.logging.path is not None and not settings.logging.use_stderr
    for line in startup.lines(settings, DASHBOARD_BASE):
        log.info("%s", line)
        if quiet_terminal:  # the log goes to a file: the terminal still says where to go
            print(line, file=sys.stderr, flush=True)
    # The serving processes build their own (workers are forked from this one): no connection is shared.
    if services.engine is not None:
        services.engine.dispose()
    del services
    head = head_bound(settings.max_header_line)
    os.environ[HEAD_ENV] = str(head)  # worker processes inherit it
    common: _ServeOptions = {
        "host": settings.bind_host, "port": settings.bind_port, "log_level": None, "access_log": False,
        "http": BoundedHttpToolsProtocol, "h11_max_incomplete_event_size": head, "log_config": None,
        "ws": "none",  # the API has no WebSocket: no worker looks for a WebSocket library
        # a backstop: the app stops its transfers at graceful_shutdown_timeout itself
        "timeout_graceful_shutdown": settings.graceful_shutdown_timeout + SHUTDOWN_MARGIN
        if settings.graceful_shutdown_timeout else None,
    }  # fmt: skip
    if settings.workers > 1:
        os.environ[SETTINGS_ENV] = json.dumps(
            {"config_files": args.config_file, "config_dir": args.config_dir, "overrides": settings.overrides}
        )
        config = uvicorn.Config("glimpse.app:app_from_environment", factory=True, workers=settings.workers, **common)
        supervisor = Supervisor(config, sockets=[config.bind_socket()])
        supervisor.on_reload = reloader(settings, policy)
        supervisor.run()
    else:
        # Built again by the app, which measures its stores and pool; the recovery above is done once.
        app = create_app(settings, policy=policy, events=events)
        settle_garbage_collector()
        uvicorn.run(app, **common)
    return 0


def db(args: argparse.Namespace) -> int:
    from glimpse.assembly.database import database_revision, sync_database
    from glimpse.cli import database as database_cli
    from glimpse.cli import metadefs as metadefs_cli

    settings = _settings(args)
    if args.db_command == "import-glance":
        from glimpse.assembly.operations import build_glance_import
        from glimpse.cli import glance_import as glance_import_cli

        return glance_import_cli.run(args, build_glance_import(settings, args.source))
    if args.db_command in database_cli.COMMANDS:
        return database_cli.run(args, settings, _console())
    if args.db_command in metadefs_cli.COMMANDS:
        from glimpse.assembly.operations import build_metadef_files

        return metadefs_cli.run(args, build_metadef_files(settings), _errors())
    if args.db_command == "sync":
        _errors().print(f"Database schema is at revision {sync_database(settings)} (head).")
    else:
        print(database_revision(settings) or "none")
    return 0


def _admin() -> RequestContext:
    return RequestContext(project_id=None, user_id="glimpse-cli", roles=frozenset({"admin"}), is_admin=True)


def _quota_table(title: str, usage: dict[str, dict[str, int]]) -> Table:
    from rich.table import Table

    table = Table(title=title)
    for column in ("limit", "in use", "of"):
        table.add_column(column, justify="right" if column != "of" else "left")
    for name, entry in usage.items():
        unit = " MiB" if name in ("image_size_total", "image_stage_total") else ""
        limit = "no limit" if entry["limit"] < 0 else f"{entry['limit']}{unit}"
        table.add_row(limit, f"{entry['usage']}{unit}", name)
    return table


def quota(args: argparse.Namespace) -> int:
    from glimpse.app import build_services

    quotas = build_services(_settings(args)).quotas
    out = _console()
    if args.quota_command == "list":
        from rich.table import Table

        table = Table(title="Per-project quotas")
        table.add_column("project")
        for name in QUOTA_NAMES.values():
            table.add_column(name, justify="right")
        for project, limits in quotas.list(_admin()).items():
            table.add_row(project, *("-" if limits[n] is None else str(limits[n]) for n in QUOTA_NAMES.values()))
        out.print(table)
        return 0
    if args.quota_command == "set":
        body: dict[str, int | None] = {}
        for flag, name in QUOTA_NAMES.items():
            value = getattr(args, flag)
            if value is None:
                continue
            if value.lower() == "none":
                body[name] = None
            elif flag in ("size", "staged"):
                body[name] = -(-parse_size(value) // (1024 * 1024))  # the API counts MiB
            else:
                body[name] = int(value)
        usage = quotas.set(_admin(), args.project, body)
    else:
        usage = quotas.usage(_admin(), args.project)
    out.print(_quota_table(f"Quotas of project {args.project}", usage))
    return 0


def store(args: argparse.Namespace) -> int:
    from glimpse.app import build_services
    from glimpse.cli import store as store_cli

    settings = _settings(args)
    return store_cli.run(args, settings, build_services(settings).stores)


def status(args: argparse.Namespace) -> int:
    from glimpse.cli import status as status_cli

    return status_cli.run(args, _settings(args), _errors())


def cache(args: argparse.Namespace) -> int:
    from glimpse.app import build_services
    from glimpse.cli import cache as cache_cli

    return cache_cli.run(args, build_services(_settings(args)).cache, _admin())


def scrub(args: argparse.Namespace) -> int:
    from glimpse.assembly.operations import build_scrubber, hold_database
    from glimpse.cli import scrub as scrub_cli

    settings = _settings(args)
    hold_database(settings, "scrub")
    return scrub_cli.run(args, build_scrubber(settings), settings.wakeup_time, _console())


def audit(args: argparse.Namespace) -> int:
    from glimpse.app import build_services
    from glimpse.cli import audit as audit_cli

    settings = _settings(args)
    return audit_cli.run_audit(args, build_services(settings).audit, _admin(), settings.audit.retention_days)


def retention(args: argparse.Namespace) -> int:
    from glimpse.app import build_services
    from glimpse.cli import audit as audit_cli

    try:
        return audit_cli.run_retention(args, build_services(_settings(args)).retention, _admin())
    except (NotFound, Forbidden) as exc:
        _errors().print(f"[red]glimpse: {exc.message}[/red]")
        return 1


def webhook(args: argparse.Namespace) -> int:
    from glimpse.assembly.webhooks import build_webhook_tools
    from glimpse.cli import webhook as webhook_cli

    service, deliverer = build_webhook_tools(_settings(args))
    return webhook_cli.run(args, service, deliverer, _admin(), _console())


def dashboard(args: argparse.Namespace) -> int:
    from glimpse.app import build_services
    from glimpse.cli import dashboard_sessions as dashboard_cli

    return dashboard_cli.run(args, build_services(_settings(args)).dashboard_sessions, _console(width=200))


def recycle_bin(args: argparse.Namespace) -> int:
    from glimpse.app import build_services
    from glimpse.cli import lifecycle as lifecycle_cli

    return lifecycle_cli.run_bin(args, build_services(_settings(args)), _admin(), _console())


def image(args: argparse.Namespace) -> int:
    from glimpse.cli import lifecycle as lifecycle_cli

    if args.image_command == "upload":  # a client of a running service: no configuration of its own
        from glimpse.cli import upload as upload_cli

        return upload_cli.run(args, _errors())
    from glimpse.app import build_services

    return lifecycle_cli.run_image(args, build_services(_settings(args)), _admin(), _console())


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logsafe.install()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(serving=argv[:1] == ["serve"]).parse_args(argv)
    try:
        commands = {
            "serve": serve, "db": db, "quota": quota, "store": store, "status": status, "cache": cache, "scrub": scrub,
            "audit": audit, "retention": retention,
            "webhook": webhook, "dashboard": dashboard,
            "bin": recycle_bin, "image": image,
        }  # fmt: skip
        return commands[args.command](args)
    except (ConfigError, BadRequest, ValueError) as exc:
        _errors().print(f"[red]glimpse: {redact(str(getattr(exc, 'message', exc)))}[/red]")
        return 2


if __name__ == "__main__":
    sys.exit(main())
