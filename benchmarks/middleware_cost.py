"""CPU of Glimpse's own middleware stack alone, per request, around an endpoint that answers 300 bytes at once.

    .venv/bin/python benchmarks/middleware_cost.py                          # access log off (as inprocess_cost.py)
    ACCESS_LOG=1 .venv/bin/python benchmarks/middleware_cost.py 2>/dev/null # with the server's logging
    CHECKOUT=/work/main .venv/bin/python benchmarks/middleware_cost.py      # another checkout's code, to compare

The layers web.middleware() lists for the default configuration (request id, access log, metrics, CORS, limits,
dashboard, cross-site guard, no-auth context), in their order, without Starlette's router and error layers: a
show-like GET with no Origin, no cookie, no body. The best of five rounds of N (20000) requests, process CPU time.
What inprocess_cost.py's figures cannot show apart from their noise: a few microseconds per request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHECKOUT = Path(os.environ.get("CHECKOUT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(CHECKOUT))

from glimpse import logs, logsafe  # noqa: E402
from glimpse.app import create_app  # noqa: E402
from glimpse.config import load_settings  # noqa: E402

BODY = b"x" * 300
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"application/json"), (b"content-length", b"300")]}  # fmt: skip


async def endpoint(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send(dict(START))
    await send({"type": "http.response.body", "body": BODY})


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def discard(message: Any) -> None:
    return None


def scope() -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": "/v2/images/abc", "raw_path": b"/v2/images/abc", "query_string": b"", "root_path": "",
            "headers": [(b"host", b"127.0.0.1:9292"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
            "client": ("127.0.0.1", 5555), "server": ("127.0.0.1", 9292), "state": {}}  # fmt: skip


async def main() -> None:
    settings = load_settings(None, None, {"data_dir": tempfile.mkdtemp(prefix="glimpse-mw-")})
    app = create_app(settings)
    if os.environ.get("ACCESS_LOG"):
        logs.configure(settings.logging)
        logsafe.install()
    else:
        logging.disable(logging.INFO)
    stack: Any = endpoint
    for cls, args, kwargs in reversed(app.user_middleware):
        stack = cls(stack, *args, **kwargs)
    count = int(os.environ.get("N", 20000))
    for _ in range(2000):
        await stack(scope(), receive, discard)
    rounds = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(count):
            await stack(scope(), receive, discard)
        rounds.append((time.process_time() - started) / count * 1e6)
    mode = "access log on" if os.environ.get("ACCESS_LOG") else "access log off"
    print(f"{CHECKOUT}: {len(app.user_middleware)} layers, {mode}: {min(rounds):.1f} us/request", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
