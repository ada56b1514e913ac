"""The `glimpse` command: serve, db sync, db version."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from rich.console import Console

from glimpse.config import Settings, load_settings
from glimpse.errors import ConfigError

console = Console(stderr=True)


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config-file", action="append", default=[], metavar="F", help="glance-api.conf-style file")
    parser.add_argument("--config-dir", metavar="D", help="folder of *.conf files read after --config-file")
    parser.add_argument("--data-dir", metavar="DIR", help="folder of the embedded database and images")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="glimpse", description="Glimpse image service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the Images API v2 server")
    _config_args(serve)
    serve.add_argument("--bind", dest="bind_host", metavar="ADDR", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", dest="bind_port", type=int, metavar="N", help="port to listen on (9292)")
    serve.add_argument("--workers", type=int, metavar="N", help="worker processes (1)")
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    for name, text in (("sync", "create or upgrade the schema"), ("version", "print the schema revision")):
        _config_args(db.add_parser(name, help=text))
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k, None) for k in ("bind_host", "bind_port", "workers", "data_dir")}
    settings = load_settings(args.config_file, args.config_dir, overrides)
    if settings.unknown_options:
        logging.getLogger("glimpse").warning(
            "Options Glimpse does not know, ignored: %s", ", ".join(settings.unknown_options)
        )
    return settings


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from glimpse.app import SETTINGS_ENV, build_service, create_app

    settings = _settings(args)
    if not settings.auth_flavor and not _is_loopback(settings.bind_host) and not settings.allow_insecure_noauth_bind:
        raise ConfigError(
            f"Refusing to serve on {settings.bind_host} without authentication: anyone reaching it would be "
            "an administrator. Bind to 127.0.0.1, configure [paste_deploy] flavor = keystone, or set "
            "[DEFAULT] allow_insecure_noauth_bind = true."
        )
    service = build_service(settings)
    recovered = service.recover()
    if recovered:
        console.print(f"Recovered {recovered} interrupted upload(s): the images are queued again.")
    console.print(
        f"Glimpse serving the Images API v2 on http://{settings.bind_host}:{settings.bind_port} "
        f"(database {settings.database_url.split('://')[0]}, images in {settings.filesystem_store_datadir})"
    )
    common = {"host": settings.bind_host, "port": settings.bind_port, "log_level": "warning", "access_log": False}
    if settings.workers > 1:
        os.environ[SETTINGS_ENV] = json.dumps(
            {
                "config_files": args.config_file,
                "config_dir": args.config_dir,
                "overrides": {k: getattr(args, k, None) for k in ("bind_host", "bind_port", "workers", "data_dir")},
            }
        )
        uvicorn.run("glimpse.app:app_from_environment", factory=True, workers=settings.workers, **common)
    else:
        uvicorn.run(create_app(settings, service), **common)
    return 0


def db(args: argparse.Namespace) -> int:
    from glimpse.db import migrate
    from glimpse.db.session import make_engine

    settings = _settings(args)
    engine = make_engine(settings.database_url)
    if args.db_command == "sync":
        migrate.upgrade(engine)
        console.print(f"Database schema is at revision {migrate.current_revision(engine)} (head).")
    else:
        print(migrate.current_revision(engine) or "none")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        return serve(args) if args.command == "serve" else db(args)
    except ConfigError as exc:
        console.print(f"[red]glimpse: {exc.message}[/red]")
        return 2


if __name__ == "__main__":
    sys.exit(main())
