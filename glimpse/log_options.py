"""[DEFAULT] options of logging (oslo.log's names, defaults and meaning) and of stopping the server.

config.py collects them with the other sections; `read_log_settings` reads only these from the files
again when the server gets SIGHUP.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from oslo_config import cfg

from glimpse.errors import ConfigError
from glimpse.logs import DEFAULT_DATE_FORMAT, DEFAULT_LOG_LEVELS, LogSettings

_IGNORED = " Ignored when log_config_append is set."
LOG_OPTS: list[cfg.Opt] = [
    cfg.BoolOpt("debug", default=False, help="Log at DEBUG instead of INFO (re-read on SIGHUP)."),
    cfg.StrOpt(
        "log_config_append",
        deprecated_name="log_config",
        help="A logging.config file (Python's fileConfig format) that configures every handler, format and level; "
        "the other logging options are then ignored.",
    ),
    cfg.StrOpt("log_file", deprecated_name="logfile", help="File to log to (default: standard error)." + _IGNORED),
    cfg.StrOpt(
        "log_dir",
        deprecated_name="logdir",
        help="Folder of a relative log_file; alone, logs go to <log_dir>/glimpse.log." + _IGNORED,
    ),
    cfg.BoolOpt("use_stderr", default=False, help="Log to standard error (as well as log_file)." + _IGNORED),
    cfg.BoolOpt("use_json", default=False, help="One JSON object per line, for log shippers." + _IGNORED),
    cfg.BoolOpt("use_syslog", default=False, help="Log to syslog (/dev/log) as well." + _IGNORED),
    cfg.StrOpt("syslog_log_facility", default="LOG_USER", help="Syslog facility of use_syslog." + _IGNORED),
    cfg.StrOpt("log_date_format", default=DEFAULT_DATE_FORMAT, help="strftime format of %(asctime)s." + _IGNORED),
    cfg.ListOpt(
        "default_log_levels",
        default=list(DEFAULT_LOG_LEVELS),
        help="logger=LEVEL pairs (re-read on SIGHUP)." + _IGNORED,
    ),
]
SHUTDOWN_OPTS: list[cfg.Opt] = [
    cfg.IntOpt(
        "graceful_shutdown_timeout",
        default=60,
        min=0,
        help="Seconds uploads and downloads in flight may take to finish after SIGTERM (oslo.service's name, which "
        "Glance registered while it ran on it); uploads still running then go back to queued. 0 waits forever.",
    ),
]
# What `glimpse serve` can override from its command line.
OVERRIDES = ("log_file", "debug", "log_format")


def log_settings(values: Mapping[str, object], overrides: Mapping[str, object]) -> LogSettings:
    """LogSettings from the [DEFAULT] values of LOG_OPTS and serve's --log-file, --debug, --log-format."""
    fmt = overrides.get("log_format")
    if fmt not in (None, "text", "json"):
        raise ConfigError(f"--log-format {fmt} is unknown: use text or json.")
    levels = values["default_log_levels"]
    assert isinstance(levels, Sequence)
    return LogSettings(
        debug=bool(overrides.get("debug") or values["debug"]),
        log_file=str(overrides.get("log_file") or values["log_file"] or "") or None,
        log_dir=_text(values["log_dir"]),
        use_stderr=bool(values["use_stderr"]),
        use_json=fmt == "json" if fmt else bool(values["use_json"]),
        use_syslog=bool(values["use_syslog"]),
        syslog_log_facility=str(values["syslog_log_facility"]),
        log_config_append=_text(values["log_config_append"]),
        log_date_format=str(values["log_date_format"]),
        default_log_levels=tuple(str(pair) for pair in levels),
    )


def _text(value: object) -> str | None:
    return str(value) if value else None


def read_log_settings(files: Sequence[str], overrides: Mapping[str, object]) -> LogSettings:
    """The logging options of `files` read again (for SIGHUP); ConfigError when a file no longer parses."""
    conf = cfg.ConfigOpts()
    conf.register_opts(LOG_OPTS)
    try:
        conf(args=[], project="glimpse", default_config_files=list(files), default_config_dirs=[])
        return log_settings({o.dest: conf[o.dest] for o in LOG_OPTS}, overrides)
    except cfg.Error as exc:
        raise ConfigError(f"Invalid configuration: {exc}") from exc
