"""Glimpse benchmarks: every figure printed beside the machine's own limit, measured in the same run.

    .venv/bin/python benchmarks/run.py            # full run (1 GiB transfers, 5 GiB memory test, 1M images)
    .venv/bin/python benchmarks/run.py --quick    # small sizes, a minute or two
    .venv/bin/python benchmarks/run.py --only metadata --postgresql postgresql://postgres@127.0.0.1/test
    .venv/bin/python benchmarks/run.py --only metrics   # requests/s with and without Prometheus metrics
    .venv/bin/python benchmarks/request_cost.py --compare-glance   # server CPU per metadata request under wrk

Nothing here asserts a time; the figures are for people to read.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.functional.databases import fresh_database  # noqa: E402
from tests.functional.server import GlimpseServer  # noqa: E402

MIB = 1024 * 1024
CHUNK = 4 * MIB


def report(label: str, value: float, unit: str, limit: float | None = None, limit_label: str = "") -> None:
    line = f"  {label:<52} {value:>10.1f} {unit}"
    if limit:
        line += f"   ({value / limit:>5.0%} of {limit_label} {limit:.1f} {unit})"
    print(line, flush=True)


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory of a process and its children (uvicorn runs in the parent here)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS


def data_chunks(total: int) -> Iterator[bytes]:
    block = os.urandom(CHUNK)
    sent = 0
    while sent < total:
        piece = block[: min(CHUNK, total - sent)]
        sent += len(piece)
        yield piece


# --- data path ------------------------------------------------------------------------------------------
def bench_data(server: GlimpseServer, size: int, workdir: Path) -> None:
    print(f"\nData path: {size // MIB} MiB image, file store", flush=True)
    block = os.urandom(CHUNK)
    t = time.perf_counter()
    md5, sha = hashlib.md5(), hashlib.sha512()
    for _ in range(size // CHUNK):
        md5.update(block)
        sha.update(block)
    hash_rate = size / MIB / (time.perf_counter() - t)
    raw = workdir / "raw-write.bin"
    t = time.perf_counter()
    with open(raw, "wb") as out:
        for _ in range(size // CHUNK):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    write_rate = size / MIB / (time.perf_counter() - t)
    t = time.perf_counter()
    with open(raw, "rb") as f:
        while f.read(CHUNK):
            pass
    read_rate = size / MIB / (time.perf_counter() - t)
    raw.unlink()

    with httpx.Client(base_url=server.url, timeout=600) as client:
        image = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
        t = time.perf_counter()
        response = client.put(
            f"/v2/images/{image['id']}/file",
            content=data_chunks(size),
            headers={"Content-Type": "application/octet-stream"},
        )
        upload_rate = size / MIB / (time.perf_counter() - t)
        assert response.status_code == 204, response.text
        t = time.perf_counter()
        with client.stream("GET", f"/v2/images/{image['id']}/file") as stream:
            for _ in stream.iter_raw(CHUNK):
                pass
        download_rate = size / MIB / (time.perf_counter() - t)
    report("md5+sha512, one pass over the bytes (machine)", hash_rate, "MB/s")
    report("raw write + fsync of the bytes (machine)", write_rate, "MB/s")
    report("read of the file from the page cache (machine)", read_rate, "MB/s")
    report("upload  PUT /v2/images/{id}/file", upload_rate, "MB/s", hash_rate, "hashing")
    report("        ... against the raw disk write", upload_rate, "MB/s", write_rate, "disk write")
    report("download GET /v2/images/{id}/file", download_rate, "MB/s", read_rate, "page-cache read")


def bench_memory(server: GlimpseServer, size: int) -> None:
    assert server.proc is not None
    print(f"\nServer memory: {size // MIB} MiB upload and download", flush=True)
    pid = server.proc.pid
    before = peak_rss_mib(pid)
    reset_peak(pid)
    with httpx.Client(base_url=server.url, timeout=3600) as client:
        image = client.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"}).json()
        client.put(
            f"/v2/images/{image['id']}/file",
            content=data_chunks(size),
            headers={"Content-Type": "application/octet-stream"},
        )
        upload_peak = peak_rss_mib(pid)
        reset_peak(pid)
        with client.stream("GET", f"/v2/images/{image['id']}/file") as stream:
            for _ in stream.iter_raw(CHUNK):
                pass
        download_peak = peak_rss_mib(pid)
        client.delete(f"/v2/images/{image['id']}")
    report("server peak RSS before", before, "MiB")
    report("server peak RSS during upload", upload_peak, "MiB")
    report("server peak RSS during download", download_peak, "MiB")


# --- metadata -------------------------------------------------------------------------------------------
async def _load(url: str, make: Callable[[int], tuple[str, str, dict | None]], total: int, clients: int) -> list[float]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal errors
        for i in counter:
            method, path, body = make(i)
            t = time.perf_counter()
            response = await client.request(method, path, json=body)
            latencies.append(time.perf_counter() - t)
            if response.status_code >= 400:
                errors += 1

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        await asyncio.gather(*(one(client) for _ in range(clients)))
    if errors:
        print(f"    !! {errors} errors", flush=True)
    return latencies


def bench_metadata(server: GlimpseServer, label: str, requests: int, clients: int = 16) -> None:
    print(f"\nMetadata on {label}: {clients} concurrent clients", flush=True)
    created: list[str] = []

    def create(i: int) -> tuple[str, str, dict | None]:
        return "POST", "/v2/images", {"name": f"bench-{i}", "disk_format": "raw", "container_format": "bare",
                                      "os_distro": "ubuntu" if i % 2 else "debian"}  # fmt: skip

    t = time.perf_counter()
    lat = asyncio.run(_load(server.url, create, requests, clients))
    rate = requests / (time.perf_counter() - t)
    _summary("create POST /v2/images", rate, lat)
    with httpx.Client(base_url=server.url) as client:
        created = [i["id"] for i in client.get("/v2/images?limit=200").json()["images"]]
    cases = {
        "show GET /v2/images/{id}": lambda i: ("GET", f"/v2/images/{created[i % len(created)]}", None),
        "list GET /v2/images?limit=20": lambda i: ("GET", "/v2/images?limit=20", None),
        "list ?status=queued&visibility=shared": lambda i: (
            "GET", "/v2/images?limit=20&status=queued&visibility=shared", None
        ),
        "list ?os_distro=ubuntu (custom property)": lambda i: ("GET", "/v2/images?limit=20&os_distro=ubuntu", None),
    }  # fmt: skip
    for name, make in cases.items():
        t = time.perf_counter()
        lat = asyncio.run(_load(server.url, make, requests, clients))
        _summary(name, requests / (time.perf_counter() - t), lat)


def _summary(name: str, rate: float, latencies: list[float]) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"  {name:<45} {rate:>8.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms", flush=True)


# --- list latency at scale ------------------------------------------------------------------------------
def seed_images(database_url: str, count: int) -> None:
    """Insert `count` images straight into the database (the API would take hours for a million)."""
    from sqlalchemy import insert

    from glimpse.db import migrate
    from glimpse.db.models import ImageRow, PropertyRow
    from glimpse.db.session import make_engine

    engine = make_engine(database_url)
    migrate.upgrade(engine)
    start = datetime(2020, 1, 1)
    batch = 20000
    with engine.begin() as conn:
        for offset in range(0, count, batch):
            rows, props = [], []
            for i in range(offset, min(count, offset + batch)):
                image_id = str(uuid.UUID(int=i + 1))
                when = start + timedelta(seconds=i)
                rows.append(dict(id=image_id, name=f"img-{i:07d}", status="active", visibility="public",
                                 protected=False, os_hidden=False, owner=f"p{i % 100}", size=i, min_disk=0,
                                 min_ram=0, created_at=when, updated_at=when, deleted=False, revision=0,
                                 disk_format="raw", container_format="bare"))  # fmt: skip
                props.append(dict(image_id=image_id, name="os_distro", value="ubuntu" if i % 10 else "debian"))
            conn.execute(insert(ImageRow), rows)
            conn.execute(insert(PropertyRow), props)
    engine.dispose()


def bench_list_scale(counts: list[int], workdir: Path) -> None:
    print("\nList latency by database size (SQLite, 50 requests each, one client)", flush=True)
    baseline: dict[str, float] = {}
    for count in counts:
        url = f"sqlite:///{workdir / f'scale-{count}.db'}"
        seed_images(url, count)
        server = GlimpseServer(workdir / f"scale-{count}", url).start()
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                deep = client.get(f"/v2/images?limit=1&sort=name:asc&marker={uuid.UUID(int=count // 2)}")
                assert deep.status_code == 200
                for name, path in {
                    "first page ?limit=20": "/v2/images?limit=20",
                    "deep page (marker in the middle)": f"/v2/images?limit=20&marker={uuid.UUID(int=count // 2)}",
                    "filtered ?os_distro=debian": "/v2/images?limit=20&os_distro=debian",
                }.items():
                    samples = []
                    for _ in range(50):
                        t = time.perf_counter()
                        assert client.get(path).status_code == 200
                        samples.append(time.perf_counter() - t)
                    p50 = statistics.median(samples) * 1000
                    ratio = f"   ({p50 / baseline[name]:.2f}x the {counts[0]:,} figure)" if name in baseline else ""
                    baseline.setdefault(name, p50)
                    print(f"  {count:>9,} images  {name:<34} p50 {p50:6.1f} ms{ratio}", flush=True)
        finally:
            server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for a fast look")
    parser.add_argument("--only", choices=["data", "memory", "metadata", "scale", "metrics"], action="append")
    parser.add_argument("--postgresql", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="admin URL of a PostgreSQL server for the metadata run ('' to skip)")  # fmt: skip
    parser.add_argument("--compare-glance", action="store_true",
                        help="also run data and metadata on Glance (benchmarks/install-glance)")  # fmt: skip
    args = parser.parse_args()
    parts = set(args.only or ["data", "memory", "metadata", "scale"])
    size = 64 * MIB if args.quick else 1024 * MIB
    memory_size = 256 * MIB if args.quick else 5 * 1024 * MIB
    requests = 400 if args.quick else 3000
    counts = [10_000, 100_000] if args.quick else [10_000, 1_000_000]
    print(f"Glimpse benchmarks on {os.cpu_count()} cores ({'quick' if args.quick else 'full'} run)")
    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp:
        workdir = Path(tmp)
        if parts & {"data", "memory", "metadata"}:
            server = GlimpseServer(workdir / "sqlite")
            assert server.command("db", "sync").returncode == 0  # as in production: migrated before serving
            server.start()
            try:
                if "data" in parts:
                    bench_data(server, size, workdir)
                if "memory" in parts:
                    bench_memory(server, memory_size)
                if "metadata" in parts:
                    bench_metadata(server, "SQLite", requests)
            finally:
                server.stop()
            if "metadata" in parts and args.postgresql:
                with fresh_database("postgresql") as url:
                    pg = GlimpseServer(workdir / "pg", url)
                    assert pg.command("db", "sync").returncode == 0
                    pg.start()
                    try:
                        bench_metadata(pg, "PostgreSQL", requests)
                    finally:
                        pg.stop()
        if "scale" in parts:
            bench_list_scale(counts, workdir)
        if "metrics" in parts:
            from benchmarks.metrics_overhead import bench_metrics_overhead

            bench_metrics_overhead(sys.modules[__name__], workdir, requests)

    # --- the same data and metadata sections against OpenStack Glance, with ratios (benchmarks/glance_baseline.py)
    if args.compare_glance:
        from benchmarks.glance_baseline import compare_with_glance

        with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp:
            compare_with_glance(sys.modules[__name__], parts, size, requests, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
