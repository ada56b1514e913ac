from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from glimpse import logs, logsafe
from glimpse.api.access_log import logged_path


@pytest.fixture(autouse=True)
def _installed() -> None:
    logsafe.install()
    logs.install_context()


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level put back after the test."""
    logger = logging.getLogger()
    saved, level = list(logger.handlers), logger.level
    yield logger
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    for handler in saved:
        logger.addHandler(handler)
    logger.setLevel(level)


class Identity:
    user_id = "alice"
    project_id = "p1"


def record(message: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = sys.exc_info() if exc else None
    made = logging.getLogger("glimpse.test").makeRecord(
        "glimpse.test", logging.ERROR, __file__, 1, message, args, exc_info, extra=extra or None
    )
    return made


def test_text_line_names_the_request_user_and_project() -> None:
    with logs.bound({"request_id": "req-1", "context": Identity()}):
        line = logs.TextFormatter().format(record("hello %s", "world"))
    assert line.endswith(" ERROR glimpse.test [req-1 alice p1] hello world")
    assert logs.TextFormatter().format(record("outside")).endswith("glimpse.test [- - -] outside")


def test_a_task_binds_plain_values() -> None:
    with logs.bound({"request_id": "req-2", "user_id": "bob", "project_id": None}):
        line = logs.TextFormatter().format(record("task"))
    assert "[req-2 bob -] task" in line


def test_credentials_in_messages_and_tracebacks_are_redacted_in_both_formats() -> None:
    try:
        raise RuntimeError("cannot read s3://AKIA:topsecret@s3.example/bucket/obj")
    except RuntimeError:
        made = record("fetching https://u:hunter2@example.com/x?sig=abc&a=1", exc=True)
    text = logs.TextFormatter().format(made)
    entry = json.loads(logs.JsonFormatter().format(made))
    for output in (text, entry["message"] + entry["traceback"]):
        assert "topsecret" not in output and "hunter2" not in output and "sig=abc" not in output
        assert "sig=***" in output and "a=1" in output
    assert "Traceback (most recent call last)" in text and "RuntimeError" in entry["traceback"]


def test_a_record_made_without_the_factory_is_redacted_by_the_formatter() -> None:
    made = logging.LogRecord("x", logging.INFO, __file__, 1, "to swift+https://user:key@h/v1", None, None)
    assert "user:key" not in logs.TextFormatter().format(made)
    assert "user:key" not in logs.JsonFormatter().format(made)


def test_json_is_one_line_with_stable_keys_and_the_access_fields() -> None:
    access = {key: None for key in logs.ACCESS_KEYS} | {"status": 200, "path": "/v2/images", "bytes_out": 5}
    with logs.bound({"request_id": "req-3", "context": Identity()}):
        out = logs.JsonFormatter().format(record("line\nbreak", access=access))
    assert "\n" not in out
    entry = json.loads(out)
    base = ["timestamp", "asctime", "levelname", "name", "message", "process", "hostname",
            "request_id", "user_id", "project_id", "traceback"]  # fmt: skip
    assert list(entry) == base + list(logs.ACCESS_KEYS)
    assert (entry["request_id"], entry["user_id"], entry["status"], entry["bytes_out"]) == ("req-3", "alice", 200, 5)
    plain = json.loads(logs.JsonFormatter().format(record("x")))
    assert list(plain) == base and plain["request_id"] is None and plain["traceback"] is None


def test_access_path_keeps_escapes_and_redacts_the_query() -> None:
    scope = {"raw_path": b"/v2/images/%0Afake", "path": "/v2/images/\nfake", "query_string": b"token=t0k&limit=2"}
    assert logged_path(scope) == "/v2/images/%0Afake?token=***&limit=2"
    assert logged_path({"path": "/a\nb", "query_string": b""}) == "/a\\nb"


def test_configure_writes_to_the_file_and_applies_levels(tmp_path: Path, root: logging.Logger) -> None:
    target = tmp_path / "g.log"
    levels = ("glimpse.quiet=ERROR",)
    try:
        logs.configure(logs.LogSettings(log_file=str(target), use_json=True, default_log_levels=levels))
        logging.getLogger("glimpse.loud").info("kept")
        logging.getLogger("glimpse.quiet").warning("dropped")
        logging.getLogger("glimpse.loud").debug("below INFO")
        for handler in root.handlers:
            handler.flush()
        lines = [json.loads(line) for line in target.read_text().splitlines()]
        assert [entry["message"] for entry in lines] == ["kept"]
        logs.apply_levels(logs.LogSettings(debug=True))
        assert root.level == logging.DEBUG
        with pytest.raises(ValueError, match="not a logging level"):
            logs.apply_levels(logs.LogSettings(default_log_levels=("x=LOUD",)))
        with pytest.raises(ValueError, match="not a syslog facility"):
            logs.configure(logs.LogSettings(use_syslog=True, syslog_log_facility="LOG_NOPE"))
        assert [type(h) for h in root.handlers] == [logging.handlers.WatchedFileHandler]  # the old ones stay
    finally:
        logging.getLogger("glimpse.quiet").setLevel(logging.NOTSET)


def test_log_config_append_replaces_the_other_options(tmp_path: Path, root: logging.Logger) -> None:
    target = tmp_path / "from-ini.log"
    ini = tmp_path / "logging.ini"
    ini.write_text(
        "[loggers]\nkeys=root\n[handlers]\nkeys=f\n[formatters]\nkeys=plain\n"
        "[logger_root]\nlevel=WARNING\nhandlers=f\n"
        f"[handler_f]\nclass=FileHandler\nformatter=plain\nargs=({str(target)!r},)\n"
        "[formatter_plain]\nformat=%(request_id)s %(levelname)s %(message)s\n"
    )
    settings = logs.LogSettings(log_config_append=str(ini), log_file=str(tmp_path / "ignored.log"), debug=True)
    logs.configure(settings)
    with logs.bound({"request_id": "req-9"}):
        logging.getLogger("glimpse.x").warning("to http://a:b@h/")
        logging.getLogger("glimpse.x").info("below the file's WARNING")
    for handler in root.handlers:
        handler.flush()
    assert target.read_text() == "req-9 WARNING to http://***@h/\n"
    assert not (tmp_path / "ignored.log").exists()
    assert settings.destination() == f"as {ini} configures"


def test_a_traceback_logged_already_is_not_repeated_by_uvicorn() -> None:
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, rec: logging.LogRecord) -> None:
            seen.append(rec.getMessage())

    uvicorn_log = logging.getLogger("uvicorn.error")
    handler = Keep()
    uvicorn_log.addHandler(handler)
    try:
        for marked in (True, False):
            try:
                raise ValueError("boom")
            except ValueError as exc:
                if marked:
                    logs.mark_logged(exc)
                uvicorn_log.error("Exception in ASGI application", exc_info=True)
    finally:
        uvicorn_log.removeHandler(handler)
    assert seen == ["Exception in ASGI application"]


def test_destination_in_words() -> None:
    assert logs.LogSettings().destination() == "standard error (text)"
    both = logs.LogSettings(log_dir="/var/log/glimpse", use_stderr=True, use_json=True, debug=True)
    assert both.destination() == "/var/log/glimpse/glimpse.log and standard error (JSON, debug)"


def test_an_occasional_warning_is_logged_once_an_interval_with_the_repeats_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    occasional = logs.Occasional(logging.getLogger("glimpse.test"), every=60, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="glimpse.test"):
        for _ in range(4):
            occasional.warning("a", "server %s away", "x")
        occasional.warning("b", "server %s away", "y")  # another key has its own interval
        now[0] += 59.9
        occasional.warning("a", "server %s away", "x")
        now[0] += 0.2
        occasional.warning("a", "server %s away", "x")
        occasional.warning("a", "server %s away", "x")
    assert [r.getMessage() for r in caplog.records] == [
        "server x away",
        "server y away",
        "server x away (and 4 time(s) since the last such line)",
    ]
