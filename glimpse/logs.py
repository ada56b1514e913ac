"""Logging with oslo.log's options as Glance reads them ([DEFAULT] debug, log_file, log_dir, use_stderr,
use_json, use_syslog, log_config_append, log_date_format, default_log_levels), on the standard library.

Why not oslo.log itself: its formatters find the request in oslo.context's thread-local store, and an
asyncio server runs every request of a process on one thread, so a line would carry whichever request
touched the store last. Here the request travels in a ContextVar (asyncio gives each request task its
own, anyio copies it into worker threads), set by the access-log middleware and by the task worker.
Import time is not the reason (measured: oslo_log.log adds 20-50 ms to `import glimpse.app`); oslo.log
would also add a core dependency, and its setup() wants a ConfigOpts of its own.

The option names, defaults and meaning are oslo.log's: log_config_append replaces every other option,
log_dir alone means <log_dir>/glimpse.log, and the file is reopened when logrotate moves it
(WatchedFileHandler, oslo.log's default). Two differences: with neither log_file nor use_stderr, lines go
to standard error (oslo.log writes them to standard output), and default_log_levels also quiets alembic.
"""

from __future__ import annotations

import json
import logging
import logging.config
import logging.handlers
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from glimpse.logsafe import add_record_hook, redact

# oslo.log's DEFAULT_LOG_LEVELS, plus the migration tool's chatter at start-up.
DEFAULT_LOG_LEVELS: tuple[str, ...] = (
    "amqp=WARN", "boto=WARN", "sqlalchemy=WARN", "suds=INFO", "oslo.messaging=INFO", "oslo_messaging=INFO",
    "iso8601=WARN", "requests.packages.urllib3.connectionpool=WARN", "urllib3.connectionpool=WARN",
    "websocket=WARN", "requests.packages.urllib3.util.retry=WARN", "urllib3.util.retry=WARN",
    "keystonemiddleware=WARN", "routes.middleware=WARN", "stevedore=WARN", "taskflow=WARN",
    "keystoneauth=WARN", "oslo.cache=INFO", "oslo_policy=INFO", "dogpile.core.dogpile=INFO", "alembic=WARN",
)  # fmt: skip
DEFAULT_DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
TEXT_FORMAT = "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [%(request_id)s %(user_id)s %(project_id)s] "
SYSLOG_FACILITIES = {name.upper(): value for name, value in logging.handlers.SysLogHandler.facility_names.items()}

# The current request or task: a Mapping with request_id and either a `context` (an object with user_id
# and project_id, as the auth middleware leaves in the ASGI scope) or user_id and project_id themselves.
_current: ContextVar[Mapping[str, Any] | None] = ContextVar("glimpse_log_context", default=None)


@dataclass(frozen=True)
class LogSettings:
    debug: bool = False
    log_file: str | None = None
    log_dir: str | None = None
    use_stderr: bool = False
    use_json: bool = False
    use_syslog: bool = False
    syslog_log_facility: str = "LOG_USER"
    log_config_append: str | None = None
    log_date_format: str = DEFAULT_DATE_FORMAT
    default_log_levels: tuple[str, ...] = DEFAULT_LOG_LEVELS

    @property
    def path(self) -> str | None:
        """The log file, as oslo.log finds it from log_file and log_dir."""
        if self.log_file:
            return os.path.join(self.log_dir, self.log_file) if self.log_dir else self.log_file
        if self.log_dir:
            return os.path.join(self.log_dir, "glimpse.log")
        return None

    def destination(self) -> str:
        """Where the lines go, in words, for the start-up report."""
        if self.log_config_append:
            return f"as {self.log_config_append} configures"
        places = [p for p in (self.path, "standard error" if self.use_stderr else None) if p]
        if self.use_syslog:
            places.append(f"syslog ({self.syslog_log_facility})")
        if not self.path and not self.use_stderr:
            places.append("standard error")
        kind = "JSON" if self.use_json else "text"
        return f"{' and '.join(places)} ({kind}{', debug' if self.debug else ''})"


@contextmanager
def bound(values: Mapping[str, Any]) -> Iterator[None]:
    """Every line logged inside (in this task, and in threads it starts through anyio) names this request."""
    token: Token[Mapping[str, Any] | None] = _current.set(values)
    try:
        yield
    finally:
        _current.reset(token)


class Occasional:
    """A warning that may repeat on every request (a server away), logged at most once per interval per key; the
    repeats in between are counted and told with the next line, so an outage neither floods the log nor hides."""

    def __init__(self, logger: logging.Logger, every: float = 60.0, clock: Callable[[], float] = time.monotonic):
        self._log, self._every, self._clock = logger, every, clock
        self._lock = threading.Lock()
        self._quiet_until: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, key: str, message: str, *args: object) -> None:
        with self._lock:
            now = self._clock()
            if now < self._quiet_until.get(key, now):
                self._held[key] = self._held.get(key, 0) + 1
                return
            self._quiet_until[key] = now + self._every
            held = self._held.pop(key, 0)
        if held:
            message, args = message + " (and %d time(s) since the last such line)", (*args, held)
        self._log.warning(message, *args)


def _identity(values: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    ctx = values.get("context")
    if ctx is not None:
        return values.get("request_id"), getattr(ctx, "user_id", None), getattr(ctx, "project_id", None)
    return values.get("request_id"), values.get("user_id"), values.get("project_id")


def _add_context(record: logging.LogRecord) -> None:
    values = _current.get()
    request_id, user, project = _identity(values) if values is not None else (None, None, None)
    record.request_id = request_id or "-"
    record.user_id = user or "-"
    record.project_id = project or "-"


_LOGGED = "_glimpse_logged"


def mark_logged(exc: BaseException) -> None:
    """This exception's traceback is in the log already: a server's own report of it is dropped."""
    try:
        setattr(exc, _LOGGED, True)
    except AttributeError:  # an exception type with __slots__
        return


class _NotLoggedBefore(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, _LOGGED, False)


_installed = False


def install_context() -> None:
    """Every record carries request_id, user_id and project_id (a handler of log_config_append's file
    can name them in its format too). Idempotent."""
    global _installed
    if _installed:
        return
    add_record_hook(_add_context)
    logging.getLogger("uvicorn.error").addFilter(_NotLoggedBefore())
    _installed = True


def _traceback(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_text:  # logsafe already redacted it when it held a URL
        return record.exc_text
    if record.exc_info and record.exc_info[0] is not None:
        return redact(formatter.formatException(record.exc_info))
    return None


class TextFormatter(logging.Formatter):
    """oslo.log's context format: time, process, level, logger, [request user project], message."""

    def __init__(self, datefmt: str = DEFAULT_DATE_FORMAT) -> None:
        super().__init__(TEXT_FORMAT + "%(message)s", datefmt)

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            _add_context(record)  # a record made before install_context
        record.message = redact(record.getMessage())
        record.asctime = self.formatTime(record, self.datefmt)
        text = self.formatMessage(record)
        trace = _traceback(self, record)
        return f"{text}\n{trace}" if trace else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line with stable keys, for log shippers; an access line adds ACCESS_KEYS."""

    def __init__(self, datefmt: str = DEFAULT_DATE_FORMAT) -> None:
        super().__init__(datefmt=datefmt)
        self.hostname = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            _add_context(record)
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "asctime": self.formatTime(record, self.datefmt),
            "levelname": record.levelname,
            "name": record.name,
            "message": redact(record.getMessage()),
            "process": record.process,
            "hostname": self.hostname,
            **{key: _field(record, key) for key in ("request_id", "user_id", "project_id")},
            "traceback": _traceback(self, record),
        }
        access = getattr(record, "access", None)
        if isinstance(access, Mapping):
            entry.update({key: access.get(key) for key in ACCESS_KEYS})
        return json.dumps(entry, ensure_ascii=False, default=str)


def _field(record: logging.LogRecord, key: str) -> str | None:
    value = getattr(record, key, "-")
    return None if value == "-" else str(value)


ACCESS_KEYS = ("remote_addr", "method", "path", "status", "bytes_in", "bytes_out", "duration", "outcome")


def _level(name: str, where: str) -> int:
    level = logging.getLevelName(name.strip().upper())
    if not isinstance(level, int):
        raise ValueError(f"{where}: {name!r} is not a logging level (DEBUG, INFO, WARN, ERROR, CRITICAL).")
    return level


def apply_levels(settings: LogSettings) -> None:
    """debug (root at DEBUG, else INFO) and default_log_levels; what SIGHUP changes."""
    logging.getLogger().setLevel(logging.DEBUG if settings.debug else logging.INFO)
    for pair in settings.default_log_levels:
        name, _, level = pair.partition("=")
        if name.strip() and level:
            logging.getLogger(name.strip()).setLevel(_level(level, f"default_log_levels {pair}"))


def _handlers(settings: LogSettings) -> list[logging.Handler]:
    handlers: list[logging.Handler] = []
    if settings.path:
        handlers.append(logging.handlers.WatchedFileHandler(settings.path, encoding="utf-8"))
    if settings.use_stderr or not settings.path:
        handlers.append(logging.StreamHandler(sys.stderr))
    if settings.use_syslog:
        facility = SYSLOG_FACILITIES.get(settings.syslog_log_facility.upper().removeprefix("LOG_"))
        if facility is None:
            raise ValueError(f"syslog_log_facility {settings.syslog_log_facility} is not a syslog facility.")
        handlers.append(logging.handlers.SysLogHandler("/dev/log", facility))
    return handlers


def configure(settings: LogSettings) -> None:
    """This process's logging, as the options say (every worker process calls it the same way)."""
    install_context()
    if settings.log_config_append:
        logging.config.fileConfig(settings.log_config_append, disable_existing_loggers=False)
        return
    root = logging.getLogger()
    handlers = _handlers(settings)  # first: a bad path or facility leaves the old handlers in place
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    formatter: logging.Formatter = (
        JsonFormatter(settings.log_date_format) if settings.use_json else TextFormatter(settings.log_date_format)
    )
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    apply_levels(settings)
