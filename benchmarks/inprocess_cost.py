"""CPU per metadata request inside one process: the ASGI app called directly, one request at a time.

    .venv/bin/python benchmarks/inprocess_cost.py                  # show, list, filtered, create, healthcheck
    .venv/bin/python benchmarks/inprocess_cost.py show list        # some of them
    PROF=cumulative .venv/bin/python benchmarks/inprocess_cost.py show   # and cProfile of the event loop's side
    ACCESS_LOG=1 .venv/bin/python benchmarks/inprocess_cost.py show 2>/dev/null  # with the server's logging

No HTTP parsing, no sockets, no concurrency: the work Glimpse itself does per request (middleware, policy, the
database round trip, the view and its JSON), which moves far less with the machine's load than wrk's figures do.
The best of three rounds of N (1000) requests, process CPU time; default configuration on SQLite, 200 images.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import logging
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from glimpse import logs, logsafe  # noqa: E402
from glimpse.app import create_app  # noqa: E402
from glimpse.config import load_settings  # noqa: E402

BODY = json.dumps({"name": "b", "disk_format": "raw", "container_format": "bare", "os_distro": "ubuntu"}).encode()


async def call(
    app: Any, method: str, path: str, query: bytes = b"", body: bytes = b"", content_type: bytes = b"application/json"
) -> dict[str, Any]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "",
             "headers": [(b"host", b"127.0.0.1:9292"), (b"content-type", content_type),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 9292), "state": {}}  # fmt: skip
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    out: dict[str, Any] = {"body": b""}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    await app(scope, receive, send)
    return out


async def main(only: list[str]) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="glimpse-inprocess-"))
    conf = workdir / "glance-api.conf"
    conf.write_text("[DEFAULT]\n")
    settings = load_settings([str(conf)], None, {"data_dir": str(workdir)})
    app = create_app(settings)
    if os.environ.get("ACCESS_LOG"):  # the server's logging: an access line per request to standard error
        logs.configure(settings.logging)
        logsafe.install()
    else:
        logging.disable(logging.INFO)  # the access log's line is not what is measured
    async with app.router.lifespan_context(app):
        ids = [json.loads((await call(app, "POST", "/v2/images", body=BODY))["body"])["id"] for _ in range(200)]
        ops: dict[str, Callable[[int], Awaitable[dict[str, Any]]]] = {
            "show": lambda n: call(app, "GET", f"/v2/images/{ids[n % len(ids)]}"),
            "list": lambda n: call(app, "GET", "/v2/images", b"limit=20"),
            "filtered": lambda n: call(app, "GET", "/v2/images", b"limit=20&os_distro=ubuntu"),
            "create": lambda n: call(app, "POST", "/v2/images", body=BODY),
            "healthcheck": lambda n: call(app, "GET", "/healthcheck"),
        }
        count, sort = int(os.environ.get("N", 1000)), os.environ.get("PROF")
        for name in only or list(ops):
            for n in range(50):
                await ops[name](n)
            rounds = []
            for _ in range(3):
                start = time.process_time()
                for n in range(count):
                    answer = await ops[name](n)
                    assert answer["status"] < 300, answer
                rounds.append((time.process_time() - start) / count * 1000)
            print(f"{name:12s} {min(rounds):.3f} ms/request", flush=True)
            if sort:
                profile = cProfile.Profile()
                profile.enable()
                for n in range(count):
                    await ops[name](n)
                profile.disable()
                pstats.Stats(profile).sort_stats(sort).print_stats(40)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
