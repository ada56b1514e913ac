"""What the Prometheus metrics cost: the same metadata requests on two servers, [metrics] enabled = false and the
default (enabled), in alternating rounds so both see the same machine; prints requests/s of each and the ratio,
and the time of one scrape. Run by `benchmarks/run.py --only metrics`; nothing asserts a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import httpx

from tests.functional.server import GlimpseServer

ROUNDS = 3


def bench_metrics_overhead(run: ModuleType, workdir: Path, requests: int, clients: int = 16) -> None:
    print(f"\nMetrics overhead (SQLite, {clients} concurrent clients, best of {ROUNDS} alternating rounds)", flush=True)
    servers = {
        "without metrics": GlimpseServer(workdir / "no-metrics", extra_conf="[metrics]\nenabled = false\n"),
        "with metrics": GlimpseServer(workdir / "metrics"),
    }
    for server in servers.values():
        assert server.command("db", "sync").returncode == 0
        server.start()
    try:
        ids = {}
        for label, server in servers.items():
            with httpx.Client(base_url=server.url) as client:
                ids[label] = [
                    client.post(
                        "/v2/images", json={"name": f"m{i}", "disk_format": "raw", "container_format": "bare"}
                    ).json()["id"]
                    for i in range(50)
                ]
        cases: dict[str, Callable[[list[str]], Callable[[int], tuple[str, str, None]]]] = {
            "show GET /v2/images/{id}": lambda created: lambda i: ("GET", f"/v2/images/{created[i % 50]}", None),
            "list GET /v2/images?limit=20": lambda created: lambda i: ("GET", "/v2/images?limit=20", None),
        }
        for name, make in cases.items():
            best = dict.fromkeys(servers, 0.0)
            for _ in range(ROUNDS):
                for label, server in servers.items():
                    t = time.perf_counter()
                    asyncio.run(run._load(server.url, make(ids[label]), requests, clients))
                    best[label] = max(best[label], requests / (time.perf_counter() - t))
            ratio = best["with metrics"] / best["without metrics"]
            print(f"  {name:<32} without {best['without metrics']:>7.0f} req/s   with {best['with metrics']:>7.0f} "
                  f"req/s   ratio {ratio:.3f}", flush=True)  # fmt: skip
        url = servers["with metrics"].url
        t = time.perf_counter()
        size = len(httpx.get(f"{url}/metrics").content)
        print(f"  one scrape of /metrics: {(time.perf_counter() - t) * 1000:.1f} ms, {size} bytes", flush=True)
    finally:
        for server in servers.values():
            server.stop()
