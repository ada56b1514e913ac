"""The data path at the machine's limits: image upload/download MB/s and server memory, beside what this machine
does with the same bytes without Glimpse, and beside Glance 33 under uWSGI.

    .venv/bin/python benchmarks/data_path.py                     # 1 GiB, 3 rounds, uvicorn and Granian
    .venv/bin/python benchmarks/data_path.py --compare-glance    # ... and Glance 33 under uWSGI
    .venv/bin/python benchmarks/data_path.py --memory 5          # ... and peak RSS/PSS/USS per worker through 5 GiB
    .venv/bin/python benchmarks/data_path.py --size 256 --rounds 1 --servers uvicorn

Method. The client is curl (Debian's; C, so the client is not what is measured): `curl -T file` uploads, `curl -o
/dev/null` downloads, each of the same file of random bytes. Every server runs with its default configuration
(hardening on: request limits, upload claims and heartbeats, quota metering, Prometheus metrics, the access log).
Rounds are interleaved (each Glimpse server, Glance, then again), and each figure is the best try: other work on
the machine only ever slows a try down, so the best is the closest to what the server can do. A round uploads
once to each server, then downloads in six turns, each turn one download from nginx and one whole and one Range
download from each server: every download figure, the limit's too, is the best of as many tries taken in turn
(an earlier version took nginx's best of six tries a round against a server's one, which favoured nginx).
The limits, measured in the same run:
  * hashing: md5 then sha512 over the same bytes, one pass in one thread (what an upload must at least do);
  * static file: nginx from Debian (`apt-get install -y nginx`) serving the same file over loopback, started here
    on free ports with its own configuration in a temporary folder; the best of sendfile and of plain reads and
    writes through 1 MiB buffers (on some virtual machines sendfile over loopback is the slower of the two), of a
    whole file and of the Range the servers get, one of them per turn (see above). On a small
    machine this is curl's own ceiling (its copy out of the socket), which every server also meets: there the
    server's CPU per GiB is the figure that tells them apart.
Glimpse servers: `glimpse serve` (uvicorn, as shipped), the same at an earlier commit (--baseline REF: that
commit's glimpse/ package first on PYTHONPATH, the same venv), and Granian serving the same app factory
(`granian --interface asgi --factory glimpse.app:app_from_environment`, metrics folder prepared as `serve` does),
which offers the ASGI pathsend extension: a whole file-store image goes out without crossing Python.
Server CPU per GiB downloaded: utime+stime of the server's whole process tree (/proc) around each download, the
lowest of the rounds: steadier than a rate on a shared machine, and what zero-copy sending saves.
Memory, per worker, the largest of the workers while a transfer runs: RSS (resident pages, shared ones included;
its peak is the kernel's VmHWM, reset before the transfer through /proc/PID/clear_refs), PSS (each shared page
divided among the processes sharing it) and USS (pages only this worker has: what one more worker costs), both
from /proc/PID/smaps_rollup sampled every 0.2 s. Workers forked from a supervisor that preloaded the code share
it: RSS counts it in full in each, PSS in part, USS not at all.
Nothing here asserts a time; the figures are for people to read.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.glance_baseline import process_tree  # noqa: E402
from benchmarks.request_cost import GlanceUwsgi, _stop, tree_cpu_seconds  # noqa: E402
from tests.functional.server import GlimpseServer, GranianServer, free_port  # noqa: E402

MIB = 1024 * 1024


# --- the machine's limits ---------------------------------------------------------------------------------
def random_file(path: Path, size: int) -> Path:
    block = os.urandom(4 * MIB)
    with open(path, "wb") as out:
        for _ in range(size // len(block)):
            out.write(block[:-1] + os.urandom(1))  # no two blocks alike
    path.chmod(0o644)
    return path


def hashing_rate(path: Path) -> float:
    md5, sha = hashlib.md5(), hashlib.sha512()
    started = time.perf_counter()
    with open(path, "rb") as f:
        while block := f.read(4 * MIB):
            md5.update(block)
            sha.update(block)
    return path.stat().st_size / MIB / (time.perf_counter() - started)


class Nginx:
    """Debian's nginx serving `folder` on a free loopback port, in the foreground, its files in `workdir`."""

    def __init__(self, workdir: Path, folder: Path) -> None:
        self.workdir = workdir
        self.port, self.copying_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"  # sendfile
        self.copying_url = f"http://127.0.0.1:{self.copying_port}"  # read() and write() through 1 MiB buffers
        workdir.mkdir(parents=True, exist_ok=True)
        temps = "\n".join(f"  {kind}_temp_path {workdir / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                              "uwsgi", "scgi"))  # fmt: skip
        (workdir / "nginx.conf").write_text(
            f"""daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"};
events {{ worker_connections 64; }}
http {{
  access_log off;
  sendfile on;
{temps}
  output_buffers 2 1m;
  server {{ listen 127.0.0.1:{self.port}; root {folder}; }}
  server {{ listen 127.0.0.1:{self.copying_port}; root {folder}; sendfile off; }}
}}
"""
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise SystemExit("nginx is missing: apt-get install -y nginx")
        self.proc = subprocess.Popen([binary, "-c", str(self.workdir / "nginx.conf"), "-p", str(self.workdir)],
                                     stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(self.url, timeout=1)
                return self
            time.sleep(0.1)
        raise RuntimeError("nginx did not start")

    def stop(self) -> None:
        _stop(self.proc)


# --- the servers ------------------------------------------------------------------------------------------
class UvicornGlimpse(GlimpseServer):
    """`glimpse serve` as shipped (uvicorn)."""

    def __init__(self, workdir: Path, workers: int) -> None:
        super().__init__(workdir)
        self.workers = workers

    def start(self) -> UvicornGlimpse:  # type: ignore[override]
        assert self.command("db", "sync").returncode == 0
        super().start("--workers", str(self.workers))
        return self

    def root_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        tree = process_tree(self.root_pid())
        return [pid for pid in tree[1:] if not helper(pid)] if self.workers > 1 else tree


def helper(pid: int) -> bool:
    """multiprocessing's resource tracker, which spawned uvicorn workers come with: not a worker."""
    with contextlib.suppress(OSError):
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


class BaselineGlimpse(UvicornGlimpse):
    """`glimpse serve` running the glimpse/ package of an earlier commit (unpacked under `code`)."""

    def __init__(self, workdir: Path, workers: int, code: Path) -> None:
        super().__init__(workdir, workers)
        self.code = code

    def start(self) -> BaselineGlimpse:  # type: ignore[override]
        before = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(self.code)  # found before the editable install's finder
        try:
            super().start()
        finally:
            if before is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = before
        return self


def unpack(ref: str, into: Path) -> Path:
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "glimpse"], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


class GranianGlimpse(GranianServer):
    """The same app factory under Granian (its own workers, the ASGI pathsend extension)."""

    def __init__(self, workdir: Path, workers: int) -> None:
        super().__init__(workdir)
        self.workers = workers

    def start(self) -> GranianGlimpse:  # type: ignore[override]
        super().start(workers=self.workers)
        return self

    def root_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def worker_pids(self) -> list[int]:
        return process_tree(self.root_pid())[1:]


# --- transfers --------------------------------------------------------------------------------------------
def curl(*args: str) -> dict[str, str]:
    out = subprocess.run(
        ["curl", "-s", "-S", "-o", "/dev/null", "-w", "%{http_code} %{speed_upload} %{speed_download}", *args],
        capture_output=True, text=True, check=True, timeout=3600,
    ).stdout.split()  # fmt: skip
    return {"status": out[0], "up": out[1], "down": out[2]}


def new_image(url: str) -> str:
    response = httpx.post(f"{url}/v2/images", json={"disk_format": "raw", "container_format": "bare"}, timeout=60)
    response.raise_for_status()
    return str(response.json()["id"])


def upload(url: str, path: Path) -> tuple[str, float]:
    image_id = new_image(url)
    result = curl("-T", str(path), "-H", "Content-Type: application/octet-stream", f"{url}/v2/images/{image_id}/file")
    if result["status"] != "204":
        raise RuntimeError(f"upload answered {result['status']}")
    return image_id, float(result["up"]) / MIB


def download(file_url: str, *headers: str) -> float:
    result = curl(*(a for h in headers for a in ("-H", h)), file_url)
    if result["status"] not in ("200", "206"):
        raise RuntimeError(f"download answered {result['status']}")
    return float(result["down"]) / MIB


DOWNLOAD_TURNS = 6  # per round: two of each of nginx's three ways, six of each server's two requests


def measured_download(server: object, size: int, file_url: str, *headers: str) -> tuple[float, float]:
    """(MB/s, the server's CPU seconds per GiB sent) of one download."""
    pid = server.proc.pid  # type: ignore[attr-defined]
    before = tree_cpu_seconds(pid)
    rate = download(file_url, *headers)
    return rate, (tree_cpu_seconds(pid) - before) * 1024 * MIB / size


def nginx_rate(nginx: Nginx, size: int, cpu: dict[str, float], way: int) -> float:
    """One of nginx's ways (sendfile, plain copies) and requests (whole, the Range the servers get too), by turns:
    one sample per turn, as each server gets one of each of its requests."""
    if way % 3 == 0:
        rate, seconds = measured_download(nginx, size, f"{nginx.url}/image.bin")
        cpu["nginx"] = min(cpu["nginx"], seconds)
        return rate
    if way % 3 == 1:
        return download(f"{nginx.url}/image.bin", "Range: bytes=1-")
    return download(f"{nginx.copying_url}/image.bin")


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS (shared pages divided among the processes sharing them) and USS (pages no other process has),
    MiB, from /proc/PID/smaps_rollup."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split()[:2]
        fields[name.rstrip(":")] = int(value) / 1024
    return {"RSS": fields["Rss"], "PSS": fields["Pss"], "USS": fields["Private_Clean"] + fields["Private_Dirty"]}


class MemoryPeaks:
    """The largest RSS, PSS and USS any of the processes reaches while the block runs, sampled every 0.2 s (and
    the kernel's own RSS peak, VmHWM, reset at the start, so no RSS peak between two samples is missed)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peaks = {"RSS": 0.0, "PSS": 0.0, "USS": 0.0}
        self._done = threading.Event()

    def sample(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(OSError):
                for kind, value in memory(pid).items():
                    self.peaks[kind] = max(self.peaks[kind], value)

    def _run(self) -> None:
        while not self._done.wait(0.2):
            self.sample()

    def __enter__(self) -> MemoryPeaks:
        for pid in self.pids:
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM back to the current RSS
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.sample()
        for pid in self.pids:
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peaks["RSS"] = max(self.peaks["RSS"], int(line.split()[1]) / 1024)

    def __str__(self) -> str:
        return " / ".join(f"{self.peaks[kind]:5.1f}" for kind in ("RSS", "PSS", "USS"))


@contextlib.contextmanager
def running(server: object) -> Iterator[None]:
    server.start()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        server.stop()  # type: ignore[attr-defined]


def report(label: str, value: float, limit: float, limit_label: str) -> None:
    print(f"  {label:<50} {value:>8.0f} MB/s   {value / limit:>5.0%} of {limit_label} ({limit:.0f} MB/s)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1024, help="image size in MiB (1024)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--servers", default="uvicorn,granian", help="Glimpse under: uvicorn,granian")
    parser.add_argument("--baseline", metavar="REF", help="also `glimpse serve` at this git commit (e.g. main)")
    parser.add_argument("--compare-glance", action="store_true", help="also Glance 33 under uWSGI")
    parser.add_argument("--memory", type=int, default=0, help="GiB through each worker for its memory peaks (0: skip)")
    parser.add_argument("--metadata", type=float, default=0,
                        help="seconds of wrk per metadata operation on each Glimpse server (0: skip)")  # fmt: skip
    args = parser.parse_args()
    size = args.size * MIB
    kinds = {"uvicorn": UvicornGlimpse, "granian": GranianGlimpse}
    print(
        f"Data path on {os.cpu_count()} cores: {args.size} MiB image, {args.rounds} rounds of {DOWNLOAD_TURNS} "
        f"download turns, best tries, {args.workers} workers per server, curl as the client",
        flush=True,
    )
    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # nginx's workers run as an unprivileged user
        image = random_file(workdir / "image.bin", size)
        hashing = 0.0
        servers: dict[str, object] = {f"Glimpse ({name})": kinds[name](workdir / name, args.workers)
                                      for name in args.servers.split(",")}  # fmt: skip
        if args.baseline:
            code = unpack(args.baseline, workdir / "baseline-code")
            servers[f"Glimpse {args.baseline} (uvicorn)"] = BaselineGlimpse(workdir / "baseline", args.workers, code)
        if args.compare_glance:
            servers["Glance 33 (uWSGI)"] = GlanceUwsgi(workdir / "glance", workers=args.workers)
        nginx = Nginx(workdir / "nginx", workdir)
        up: dict[str, float] = {name: 0.0 for name in servers}
        down: dict[str, float] = {name: 0.0 for name in servers}
        ranged: dict[str, float] = {name: 0.0 for name in servers}
        cpu: dict[str, float] = {name: float("inf") for name in [*servers, "nginx"]}
        static = 0.0
        with contextlib.ExitStack() as stack:
            stack.enter_context(running(nginx))
            for server in servers.values():
                stack.enter_context(running(server))
            for _ in range(args.rounds):
                hashing = max(hashing, hashing_rate(image))
                files: dict[str, str] = {}
                for name, server in servers.items():
                    url = server.url  # type: ignore[attr-defined]
                    image_id, rate = upload(url, image)
                    up[name] = max(up[name], rate)
                    files[name] = f"{url}/v2/images/{image_id}/file"
                # Downloads take a fraction of a second each: several per round, nginx's and each server's in
                # turn, as many of each, so that every figure is the best of as many tries under the same luck.
                for turn in range(DOWNLOAD_TURNS):
                    static = max(static, nginx_rate(nginx, size, cpu, turn))
                    for name, server in servers.items():
                        rate, seconds = measured_download(server, size, files[name])
                        down[name], cpu[name] = max(down[name], rate), min(cpu[name], seconds)
                        ranged[name] = max(ranged[name], download(files[name], "Range: bytes=1-"))
                for file_url in files.values():
                    httpx.delete(file_url.removesuffix("/file"), timeout=60)
        print(f"  {'md5+sha512, one pass over the bytes (machine)':<50} {hashing:>8.0f} MB/s")
        print(f"  {'nginx serving the file over loopback (machine)':<50} {static:>8.0f} MB/s")
        for name in servers:
            report(f"upload   {name}", up[name], hashing, "hashing")
        for name in servers:
            report(f"download {name}", down[name], static, "nginx")
        for name in servers:
            report(f"download, Range bytes=1- {name}", ranged[name], static, "nginx")
        print("\nServer CPU per GiB downloaded (whole process tree, lowest round)")
        for name, seconds in cpu.items():
            print(f"  {name if name != 'nginx' else 'nginx, sendfile (machine)':<50} {seconds:>8.2f} s")
        glance = next((n for n in servers if n.startswith("Glance")), None)
        if glance:
            print("\nRatios to Glance 33 under uWSGI")
            for name in servers:
                if name != glance:
                    ratio_up, ratio_down = up[name] / up[glance], down[name] / down[glance]
                    print(f"  {name:<30} upload {ratio_up:4.2f}x   download {ratio_down:4.2f}x")
        if args.memory:
            print(f"\nPeak memory per worker through {args.memory} GiB up and {args.memory} GiB down, MiB: "
                  "RSS / PSS / USS (the largest of the workers)", flush=True)  # fmt: skip
            for name, server in servers.items():
                if name == glance:
                    continue
                with running(server):
                    measure_memory(name, server, image, args.memory)
        if args.metadata:
            compare_metadata(servers, args.metadata)
    return 0


def compare_metadata(servers: dict[str, object], seconds: float) -> None:
    """benchmarks/request_cost.py's method (wrk, 16 connections, server CPU per request) on each Glimpse server."""
    from benchmarks.request_cost import OPERATIONS, run_server

    results = {name: run_server(name, server, list(OPERATIONS), seconds, 16)  # type: ignore[arg-type]
               for name, server in servers.items() if name.startswith("Glimpse")}  # fmt: skip
    names = list(results)
    print("\nServer CPU per metadata request (ms), lower is better")
    print(f"  {'operation':<52}" + "".join(f"{n:>20}" for n in names))
    for operation, (label, _, _) in OPERATIONS.items():
        print(f"  {label:<52}" + "".join(f"{results[n][operation].cpu_ms:>20.3f}" for n in names))


def measure_memory(name: str, server: object, image: Path, gib: int) -> None:
    url = server.url  # type: ignore[attr-defined]
    pids = server.worker_pids()  # type: ignore[attr-defined]
    with MemoryPeaks(pids) as idle:
        time.sleep(0.5)
    image_id = new_image(url)
    copies = gib * 1024 * MIB // image.stat().st_size
    with MemoryPeaks(pids) as up:
        feeder = subprocess.Popen(["cat"] + [str(image)] * copies, stdout=subprocess.PIPE)
        done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-T", "-", "-H",
                               "Content-Type: application/octet-stream", f"{url}/v2/images/{image_id}/file"],
                              stdin=feeder.stdout, capture_output=True, text=True, timeout=3600)  # fmt: skip
        feeder.wait()
    with MemoryPeaks(pids) as down:
        download(f"{url}/v2/images/{image_id}/file")
    httpx.delete(f"{url}/v2/images/{image_id}", timeout=60)
    print(f"  {name:<30} idle {idle}   upload {up} ({done.stdout})   download {down}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
