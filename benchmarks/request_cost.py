"""What one metadata request costs the server: wrk load, server CPU time per completed request, p50/p99, non-2xx.

    .venv/bin/python benchmarks/request_cost.py                    # Glimpse (2 workers) and the framework floor
    .venv/bin/python benchmarks/request_cost.py --compare-glance   # ... and Glance 33 under uWSGI, with ratios
    .venv/bin/python benchmarks/request_cost.py --workers 1 --duration 5 --only show --only list
    .venv/bin/python benchmarks/request_cost.py --extra-conf '[metrics]\\nenabled = false'
    .venv/bin/python benchmarks/request_cost.py --profile /tmp/prof   # py-spy flame graphs (pip install py-spy)
    .venv/bin/python benchmarks/request_cost.py --profile /tmp/prof --profile-as txt   # collapsed stacks instead

Method: each operation runs for --duration seconds under `wrk` (Debian's wrk 4.1; `apt-get install -y wrk`) with
--connections connections over 2 wrk threads, after a 2-second warm-up at the same load. The server's CPU is the
user+system time of its whole process tree (the supervisor and every worker: utime+stime from /proc/PID/stat)
read just before and after the measured run, divided by the requests wrk completed. p50/p99 come from wrk's
latency histogram; non-2xx answers are counted by a Lua `response` hook, so a single 4xx or 5xx shows.

The servers, one at a time, on the same machine, SQLite and the file store on the same disk:
  * Glimpse: `glimpse serve --workers N` with the default configuration (metrics on, limits on);
  * the framework floor: a bare Starlette + uvicorn JSON endpoint (benchmarks/floor_app.py), same uvicorn options;
  * Glance 33 (--compare-glance): `glance.wsgi.api:application` under uWSGI as devstack runs it (http-socket,
    N processes, master, enable-threads, lazy-apps, thunder-lock, `Connection: close`), from
    benchmarks/.venv-glance (benchmarks/install-glance); uWSGI is PyPI's pyuwsgi, installed on first use into
    benchmarks/.uwsgi (`pip install --target`) and run by Glance's interpreter.

Every server gets the same seed (200 images with an `os_distro` property) before the timed runs. Nothing here
asserts a time; the figures are for people to read.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.glance_baseline import GlanceServer, process_tree  # noqa: E402
from tests.functional.server import GlimpseServer, free_port  # noqa: E402

SEED = 200
TICKS = os.sysconf("SC_CLK_TCK")
UWSGI_DIR = ROOT / "benchmarks" / ".uwsgi"
UWSGI_VERSION = "2.0.30.post1"

# wrk Lua: a `request` that varies the path (show) or sends a body (create), and a `response` hook counting
# non-2xx per thread, gathered in `done` and printed as one JSON line after wrk's own report.
LUA_COMMON = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non2xx = 0; n = 0 end
function response(status, headers, body) if status < 200 or status > 299 then non2xx = non2xx + 1 end end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("non2xx") end
  io.write(string.format('RESULT {"requests": %d, "non2xx": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d,'
    .. ' "duration_us": %d}\n', summary.requests, bad,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""
LUA_REQUEST = {
    "show": r"""
function request() n = n + 1; return wrk.format("GET", "/v2/images/" .. ids[(n % #ids) + 1]) end
""",
    "create": r"""
local body = '{"name": "wrk", "disk_format": "raw", "container_format": "bare", "os_distro": "ubuntu"}'
function request() return wrk.format("POST", "/v2/images", {["Content-Type"] = "application/json"}, body) end
""",
}
OPERATIONS = {
    # name: (label, path for wrk's URL, Lua request function or None for a fixed GET)
    "show": ("show   GET /v2/images/{id}", "/", "show"),
    "list": ("list   GET /v2/images?limit=20", "/v2/images?limit=20", None),
    "filtered": ("filter GET /v2/images?limit=20&os_distro=ubuntu", "/v2/images?limit=20&os_distro=ubuntu", None),
    "create": ("create POST /v2/images", "/", "create"),
}


class Server(Protocol):
    url: str

    def start(self) -> Any: ...
    def stop(self) -> None: ...
    def root_pid(self) -> int: ...


@dataclass
class Result:
    requests: int
    non2xx: int
    socket_errors: int
    p50_ms: float
    p99_ms: float
    rate: float
    cpu_ms: float  # server CPU per completed request


def tree_cpu_seconds(pid: int) -> float:
    """utime+stime of `pid` and its descendants (every thread is in its process's figure)."""
    total = 0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15 of stat(5)
    return total / TICKS


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is missing: apt-get install -y wrk (Debian's wrk 4.1)")
    return found


def run_wrk(url: str, operation: str, ids: list[str], seconds: float, connections: int) -> dict[str, int]:
    _, path, lua = OPERATIONS[operation]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            "ids = {" + ",".join(f'"{i}"' for i in ids) + "}\n" + LUA_COMMON + (LUA_REQUEST[lua] if lua else "")
        )
    try:
        command = [wrk_binary(), "-t2", f"-c{connections}", f"-d{round(seconds)}s", "--latency", "--timeout", "30s",
                   "-s", script.name, url + path]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
        out = done.stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"^RESULT (\{.*\})$", out, re.MULTILINE)
    if not match:
        raise RuntimeError(f"wrk printed no result ({done.returncode}):\n{out}\n{done.stderr}")
    return dict(json.loads(match.group(1)))


def measure(server: Server, operation: str, ids: list[str], seconds: float, connections: int) -> Result:
    run_wrk(server.url, operation, ids, 2, connections)  # warm-up: caches, pools, JIT-free but lazy imports
    pid = server.root_pid()
    before = tree_cpu_seconds(pid)
    figures = run_wrk(server.url, operation, ids, seconds, connections)
    cpu = tree_cpu_seconds(pid) - before
    done = max(1, figures["requests"])
    return Result(
        requests=figures["requests"], non2xx=figures["non2xx"], socket_errors=figures["socket_errors"],
        p50_ms=figures["p50_us"] / 1000, p99_ms=figures["p99_us"] / 1000,
        rate=figures["requests"] / (figures["duration_us"] / 1e6), cpu_ms=cpu / done * 1000,
    )  # fmt: skip


def seed(url: str) -> list[str]:
    with httpx.Client(base_url=url, timeout=60) as client:
        ids = []
        for i in range(SEED):
            body = {"name": f"seed-{i}", "disk_format": "raw", "container_format": "bare",
                    "os_distro": "ubuntu" if i % 2 else "debian"}  # fmt: skip
            response = client.post("/v2/images", json=body)
            response.raise_for_status()
            ids.append(response.json()["id"])
    return ids


# --- the servers ----------------------------------------------------------------------------------------
class Glimpse(GlimpseServer):
    def __init__(self, workdir: Path, workers: int, extra_conf: str) -> None:
        super().__init__(workdir, extra_conf=extra_conf)
        self.workers = workers

    def start(self) -> Glimpse:  # type: ignore[override]
        assert self.command("db", "sync").returncode == 0
        super().start("--workers", str(self.workers))
        return self

    def root_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class Floor:
    """benchmarks/floor_app.py under uvicorn with Glimpse's options (httptools, uvloop, no access log)."""

    def __init__(self, workdir: Path, workers: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log = workdir / "floor.log"
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Floor:
        command = [sys.executable, "-m", "uvicorn", "benchmarks.floor_app:app", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", str(self.workers), "--http", "httptools",
                   "--no-access-log", "--log-level", "warning"]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                         start_new_session=True)  # fmt: skip
        # With one worker uvicorn serves from the process itself: no supervisor, a tree of one.
        processes = self.workers + 1 if self.workers > 1 else 1
        _wait(self.url, self.proc, lambda: len(process_tree(self.root_pid())) >= processes)
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def root_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


class GlanceUwsgi(GlanceServer):
    """Glance 33 under uWSGI, as devstack deploys it (lib/glance's uwsgi ini with an http-socket)."""

    def start(self) -> GlanceUwsgi:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self.db_sync()
        ini = self.workdir / "glance-api-uwsgi.ini"
        ini.write_text(
            f"""[uwsgi]
module = glance.wsgi.api:application
http-socket = 127.0.0.1:{self.port}
processes = {self.workers}
master = true
enable-threads = true
lazy-apps = true
thunder-lock = true
buffer-size = 65535
die-on-term = true
exit-on-reload = false
http-raw-body = true
http-chunked-input = true
http-auto-chunked = true
add-header = Connection: close
disable-logging = true
"""
        )
        env = self._env()
        env["PYTHONPATH"] = str(install_uwsgi())
        launcher = "import sys; from pyuwsgi import run; sys.argv[0] = 'uwsgi'; sys.exit(run())"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(self.venv / "bin" / "python"), "-c", launcher, "--ini", str(ini)],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env, start_new_session=True,
            )  # fmt: skip
        _wait(self.url, self.proc, self._all_workers_up, timeout=120)
        return self

    def root_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def install_uwsgi() -> Path:
    """PyPI's pyuwsgi (uWSGI as a Python extension) in benchmarks/.uwsgi, outside every shared venv."""
    if not (UWSGI_DIR / f"pyuwsgi-{UWSGI_VERSION}.dist-info").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(UWSGI_DIR),
                        f"pyuwsgi=={UWSGI_VERSION}"], check=True)  # fmt: skip
    return UWSGI_DIR


def _wait(url: str, proc: subprocess.Popen[bytes], ready: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/versions", timeout=2).status_code in (200, 300) and ready():
                return
        time.sleep(0.2)
    _stop(proc)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait(10)


# --- profiles -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def profiling(pid: int, output: Path | None, seconds: float) -> Iterator[None]:
    """py-spy over the server's process tree while wrk runs (a flame graph SVG per operation)."""
    if output is None:
        yield
        return
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    output.parent.mkdir(parents=True, exist_ok=True)
    form = "raw" if output.suffix == ".txt" else "flamegraph"  # collapsed stacks, to read or to sum up as text
    proc = subprocess.Popen([py_spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "200", "--nonblocking",
                             "--duration", str(int(seconds)), "--format", form, "--output", str(output)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        time.sleep(1)  # py-spy attaches to every process first
        yield
    finally:
        proc.wait(seconds + 60)


# --- the table ------------------------------------------------------------------------------------------
def run_server(name: str, server: Server, operations: list[str], seconds: float, connections: int,
               profile: Path | None = None, profile_as: str = "svg") -> dict[str, Result]:  # fmt: skip
    print(f"\n--- {name} ---", flush=True)
    server.start()
    try:
        ids = seed(server.url) if not isinstance(server, Floor) else ["x"]
        results = {}
        for operation in operations:
            target = profile / f"{operation}.{profile_as}" if profile else None
            if target:
                run_wrk(server.url, operation, ids, 2, connections)
                with profiling(server.root_pid(), target, seconds):
                    result = measure(server, operation, ids, seconds, connections)
            else:
                result = measure(server, operation, ids, seconds, connections)
            results[operation] = result
            bad = f"   non-2xx {result.non2xx}" + (
                f", socket errors {result.socket_errors}" if result.socket_errors else ""
            )
            print(f"  {OPERATIONS[operation][0]:<52} {result.rate:>7.0f} req/s  CPU {result.cpu_ms:6.3f} ms/req  "
                  f"p50 {result.p50_ms:6.1f} ms  p99 {result.p99_ms:6.1f} ms{bad}", flush=True)  # fmt: skip
        return results
    finally:
        server.stop()


def print_table(all_results: dict[str, dict[str, Result]], operations: list[str]) -> None:
    print("\nServer CPU per request (ms), lower is better; ratio = Glimpse / other")
    names = list(all_results)
    header = f"  {'operation':<52}" + "".join(f"{n:>12}" for n in names)
    if "Glance" in all_results:
        header += f"{'Glimpse/Glance':>16}"
    if "floor" in all_results:
        header += f"{'Glimpse/floor':>15}"
    print(header)
    for operation in operations:
        cells = [all_results[n].get(operation) for n in names]
        line = f"  {OPERATIONS[operation][0]:<52}" + "".join(f"{c.cpu_ms:>12.3f}" if c else f"{'-':>12}" for c in cells)
        mine = all_results["Glimpse"].get(operation)
        for other, width in (("Glance", 16), ("floor", 15)):
            theirs = all_results.get(other, {}).get(operation)
            if other in all_results:
                line += f"{mine.cpu_ms / theirs.cpu_ms:>{width - 1}.2f}x" if mine and theirs else f"{'-':>{width}}"
        print(line)
    print("\np99 latency (ms) and non-2xx answers")
    for operation in operations:
        cells = [all_results[n].get(operation) for n in names]
        print(f"  {OPERATIONS[operation][0]:<52}" + "".join(
            f"{c.p99_ms:>8.1f} ({c.non2xx})" if c else f"{'-':>12}" for c in cells))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every server (2)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10, help="seconds per operation (10)")
    parser.add_argument("--only", choices=list(OPERATIONS), action="append", help="operations (all)")
    parser.add_argument("--compare-glance", action="store_true", help="also Glance 33 under uWSGI")
    parser.add_argument("--no-floor", action="store_true", help="skip the bare Starlette endpoint")
    parser.add_argument("--extra-conf", default="", help="appended to Glimpse's glance-api.conf ('\\n' for lines)")
    parser.add_argument("--profile", type=Path, help="write py-spy flame graphs of Glimpse here (OP.svg)")
    parser.add_argument(
        "--profile-as", choices=("svg", "txt"), default="svg", help="svg: flame graphs; txt: py-spy's collapsed stacks"
    )
    args = parser.parse_args()
    operations = args.only or list(OPERATIONS)
    wrk_binary()
    print(f"Request cost on {os.cpu_count()} cores: wrk {args.connections} connections, {args.duration:g} s per "
          f"operation, {args.workers} worker(s) per server", flush=True)  # fmt: skip
    results: dict[str, dict[str, Result]] = {}
    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks") as tmp:
        workdir = Path(tmp)
        extra = args.extra_conf.replace("\\n", "\n")
        glimpse = Glimpse(workdir / "glimpse", args.workers, extra)
        results["Glimpse"] = run_server(
            "Glimpse", glimpse, operations, args.duration, args.connections, args.profile, args.profile_as
        )
        if not args.no_floor:
            floor = Floor(workdir / "floor", args.workers)
            results["floor"] = run_server("framework floor (Starlette + uvicorn)", floor, operations, args.duration,
                                          args.connections)  # fmt: skip
        if args.compare_glance:
            glance = GlanceUwsgi(workdir / "glance", workers=args.workers)
            results["Glance"] = run_server("Glance 33 under uWSGI", glance, operations, args.duration,
                                           args.connections)  # fmt: skip
    print_table(results, operations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
