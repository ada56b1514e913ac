"""A request's objects are freed as it ends, by reference counting: none is left in a reference cycle.

Cyclic garbage waits for the garbage collector; a serving worker collects its young objects every 50,000
allocations, and with cycles in every request each collection freed a few thousand requests' worth at once,
pausing the worker for tens of milliseconds (the p99 of show and list). The whole application is called here as
the server calls it, with the server's logging on, for the requests the benchmarks measure, an update and a delete."""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.inprocess_cost import BODY
from benchmarks.inprocess_cost import call as _call
from glimpse import logs
from glimpse.app import create_app
from glimpse.config import load_settings

REQUESTS = 50
PATCH = b"application/openstack-images-v2.1-json-patch"
RENAME = json.dumps([{"op": "replace", "path": "/name", "value": "renamed"}]).encode()


@pytest.fixture
def logged() -> Iterator[None]:
    """The server's logging (the access line on), put back as it was afterwards."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    kept = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    yield
    for lg, handlers, level, propagate, disabled in kept:
        lg.handlers[:] = handlers
        lg.level, lg.propagate, lg.disabled = level, propagate, disabled
    logging.Logger.manager._clear_cache()  # type: ignore[attr-defined]


@pytest.mark.parametrize("operation", ["show", "list", "filtered", "create", "missing", "update", "delete"])
def test_a_request_leaves_no_cyclic_garbage(tmp_path: Path, logged: None, operation: str) -> None:
    conf = tmp_path / "glance-api.conf"
    conf.write_text("[DEFAULT]\n")
    settings = load_settings([str(conf)], None, {"data_dir": str(tmp_path)})
    app = create_app(settings)
    logs.configure(settings.logging)

    async def run() -> collections.Counter[str]:
        # Without the lifespan: its pollers (import tasks, webhooks, retention) are not requests, and their statements
        # would fall into the counted window whenever they wake.
        made = await _call(app, "POST", "/v2/images", body=BODY)
        image_id = json.loads(made["body"])["id"]

        async def created_then_deleted() -> dict[str, Any]:
            made = await _call(app, "POST", "/v2/images", body=BODY)
            return await _call(app, "DELETE", f"/v2/images/{json.loads(made['body'])['id']}")

        requests = {
            "show": lambda: _call(app, "GET", f"/v2/images/{image_id}"),
            "list": lambda: _call(app, "GET", "/v2/images", b"limit=20"),
            "filtered": lambda: _call(app, "GET", "/v2/images", b"limit=20&os_distro=ubuntu"),
            "create": lambda: _call(app, "POST", "/v2/images", body=BODY),
            "missing": lambda: _call(app, "GET", "/v2/images/00000000-0000-0000-0000-000000000000"),
            "update": lambda: _call(app, "PATCH", f"/v2/images/{image_id}", body=RENAME, content_type=PATCH),
            "delete": created_then_deleted,
        }
        for _ in range(20):  # first uses fill caches, which live on
            await requests[operation]()
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            for _ in range(REQUESTS):
                answer = await requests[operation]()
                assert answer["status"] < 500
            gc.collect()
            return collections.Counter(type(o).__qualname__ for o in gc.garbage)
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()

    left = asyncio.run(run())
    # A few objects of SQLAlchemy's caches may still be made once; a request's own would be dozens per request.
    assert sum(left.values()) < REQUESTS, f"{operation} requests left in reference cycles: {left.most_common(10)}"
