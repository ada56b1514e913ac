"""The access line's record: what a handler of log_config_append's file sees, and none built when the log is off."""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from typing import Any

import pytest

from glimpse.api import access_log
from glimpse.api.access_log import AccessLogMiddleware


async def _answer(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})


class _Marker:
    """Something a request's scope holds, to see when the request's objects are freed."""


def _request(query: bytes = b"", marker: _Marker | None = None) -> None:
    scope = {"type": "http", "method": "POST", "path": "/v2/images", "raw_path": b"/v2/images", "query_string": query,
             "headers": [], "http_version": "1.1", "client": ("192.0.2.7", 4000), "request_id": "req-1",
             "marker": marker}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    asyncio.run(AccessLogMiddleware(_answer)(scope, receive, send))


def test_the_record_names_its_line_and_carries_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "glimpse.access"):
        _request(b"limit=2&token=abc")
    (record,) = [r for r in caplog.records if r.name == "glimpse.access"]
    assert record.getMessage().startswith('192.0.2.7 "POST /v2/images?limit=2&token=*** HTTP/1.1" status: 201 len: 2')
    assert record.getMessage().endswith("in: 2 time: " + f"{record.access['duration']:.4f}")  # type: ignore[attr-defined]
    assert (record.pathname, record.funcName, record.module) == (access_log.__file__, "_log", "access_log")
    assert record.lineno > 0 and record.levelno == logging.INFO
    assert record.access["outcome"] == "complete" and record.access["bytes_in"] == 2  # type: ignore[attr-defined]


def test_no_record_is_made_when_the_access_log_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """default_log_levels = glimpse.access=ERROR: not even the fields of the line are gathered."""
    made: list[logging.LogRecord] = []
    make = access_log.access_log.makeRecord
    monkeypatch.setattr(access_log.access_log, "makeRecord", lambda *a, **k: made.append(make(*a, **k)) or made[-1])
    logger, level = access_log.access_log, access_log.access_log.level
    try:
        logger.setLevel(logging.ERROR)
        _request()
        assert made == []
        logger.setLevel(logging.INFO)
        _request()
        assert len(made) == 1
    finally:
        logger.setLevel(level)


def test_a_logged_request_is_freed_as_it_ends_not_by_a_collection(caplog: pytest.LogCaptureFixture) -> None:
    """A request's objects must not end up in a reference cycle: a cycle waits for the garbage collector, whose
    collection of a few thousand requests' worth paused a worker for tens of milliseconds (p99)."""
    marker = _Marker()
    freed = weakref.ref(marker)
    gc.collect()
    gc.disable()
    try:
        with caplog.at_level(logging.INFO, "glimpse.access"):
            _request(marker=marker)
            del marker
            assert freed() is None
    finally:
        gc.enable()
