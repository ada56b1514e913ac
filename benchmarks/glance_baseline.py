"""The real OpenStack Glance as a baseline for the benchmarks: the same workload, the same machine, the same run.

Glance (PyPI `glance`, installed by benchmarks/install-glance into benchmarks/.venv-glance) is served as a WSGI
app by gunicorn on a free loopback port, with SQLite, one file store and no authentication: the shipped paste
pipeline with an empty `[paste_deploy] flavor` puts `unauthenticated-context` where keystone's `authtoken` would
be, so every request without X-Auth-Token gets `is_admin=True` and no project. Glance's secure-RBAC policy
defaults test `role:admin`, which that context lacks, so a policy file sets `context_is_admin` to always
true: every request then acts as an admin.

    .venv/bin/python benchmarks/glance_baseline.py      # start it, run one request of each kind, stop it
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx

VENV = Path(__file__).resolve().parent / ".venv-glance"
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GlanceServer:
    """gunicorn serving `glance.wsgi.api:application` with its config under `workdir`.

    `.proc` is the gunicorn master; the workers are its children (see `pids()` and `peak_rss_mib()`).
    gthread workers (Glance runs native threads under WSGI) keep connections alive; with 16 clients on 2 cores,
    4 threads a worker gave Glance about twice the metadata rate of 1 and the same as 8.
    """

    def __init__(
        self, workdir: Path, workers: int = 2, threads: int = 4, venv: Path = VENV, database_url: str | None = None
    ) -> None:
        self.workdir = Path(workdir)
        # SQLite in workdir unless given; install-glance adds PyMySQL and psycopg for MariaDB and PostgreSQL.
        self.database_url = database_url or f"sqlite:///{self.workdir / 'glance.sqlite'}"
        self.workers = workers
        self.threads = threads
        self.venv = venv
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.workdir / "glance.log"
        self.proc: subprocess.Popen[bytes] | None = None

    # --- configuration --------------------------------------------------------------------------------
    def _write_config(self) -> None:
        w = self.workdir
        for sub in ("images", "staging", "cache"):
            (w / sub).mkdir(parents=True, exist_ok=True)
        shipped = self.venv / "etc" / "glance" / "glance-api-paste.ini"
        if not shipped.is_file():
            raise RuntimeError(f"{shipped} is missing: run benchmarks/install-glance")
        shutil.copyfile(shipped, w / "glance-api-paste.ini")  # as shipped: flavor '' -> unauthenticated-context
        (w / "glance-api.conf").write_text(
            f"""[DEFAULT]
log_file = {w / "glance-api.log"}
use_stderr = false
node_staging_uri = file://{w / "staging"}
image_cache_dir = {w / "cache"}

[database]
connection = {self.database_url}

[glance_store]
stores = file
default_store = file
filesystem_store_datadir = {w / "images"}

[paste_deploy]
flavor =
config_file = {w / "glance-api-paste.ini"}

[oslo_policy]
policy_file = {w / "policy.yaml"}

[oslo_concurrency]
lock_path = {w / "locks"}
"""
        )
        # `unauthenticated-context` builds RequestContext(is_admin=True, roles=[]), but the secure-RBAC defaults
        # check `role:admin`, so out of the box every call is 403. Make that context what it means to be: admin.
        (w / "policy.yaml").write_text('"context_is_admin": "@"\n')

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["OS_GLANCE_CONFIG_DIR"] = str(self.workdir)  # glance.common.wsgi_app reads glance-api.conf from here
        env.pop("VIRTUAL_ENV", None)
        env["PATH"] = f"{self.venv / 'bin'}:{env.get('PATH', '')}"
        return env

    def db_sync(self) -> None:
        result = subprocess.run(
            [str(self.venv / "bin" / "glance-manage"), "--config-file", str(self.workdir / "glance-api.conf"),
             "db_sync"],
            capture_output=True, text=True, timeout=300, cwd=self.workdir, env=self._env(),
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"glance-manage db_sync failed:\n{result.stdout}\n{result.stderr}")

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> GlanceServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        self.db_sync()
        command = [
            str(self.venv / "bin" / "gunicorn"),
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers),
            "--worker-class", "gthread", "--threads", str(self.threads),
            "--timeout", "3600",  # 1 GiB+ uploads go through one request
            "--keep-alive", "30",
            "--no-control-socket",  # gunicorn 27 would share ~/.gunicorn/gunicorn.ctl between servers
            "--error-logfile", str(self.log),
            "glance.wsgi.api:application",
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=self._env(),
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 90  # each worker imports and configures all of Glance
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn (glance) exited with {self.proc.returncode}:\n{self._logs()}")
            try:
                if httpx.get(f"{self.url}/versions", timeout=2).status_code == 200 and self._all_workers_up():
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"glance did not answer within 90 s:\n{self._logs()}")

    def _all_workers_up(self) -> bool:
        return len(self.pids()) >= 1 + self.workers

    def _logs(self) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        api_log = self.workdir / "glance-api.log"
        if api_log.exists():
            text += "\n--- glance-api.log (tail) ---\n" + "\n".join(
                api_log.read_text(errors="replace").splitlines()[-40:]
            )
        return text

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # gunicorn: SIGTERM is a graceful stop of the master and its workers
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def __enter__(self) -> GlanceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- memory ---------------------------------------------------------------------------------------
    def pids(self) -> list[int]:
        """The gunicorn master and its worker processes."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        return process_tree(self.proc.pid)

    def peak_rss_mib(self) -> float:
        """Sum of VmHWM (peak resident set) over the master and its workers, in MiB."""
        return tree_peak_rss_mib(self.proc.pid) if self.pids() else 0.0

    def reset_peak(self) -> None:
        for pid in self.pids():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM back to the current RSS
            except OSError:
                pass


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (gunicorn: master and workers; uvicorn --workers: supervisor and workers)."""
    found = [pid]
    for p in found:
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                found += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return found


def tree_peak_rss_mib(pid: int) -> float:
    """Sum of VmHWM over a process and its descendants, in MiB (an upper bound: shared pages count twice)."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


# --- side by side with benchmarks/run.py's own sections ----------------------------------------------------
@contextlib.contextmanager
def _recording(bench: ModuleType) -> Iterator[dict[str, tuple[float, str]]]:
    """Record what run.py's report() and _summary() print, by label, while still printing it."""
    figures: dict[str, tuple[float, str]] = {}
    report, summary = bench.report, bench._summary

    def recording_report(label: str, value: float, unit: str, *args: object, **kwargs: object) -> None:
        if "(machine)" not in label and not label.strip().startswith("..."):
            figures[label.strip()] = (value, unit)
        report(label, value, unit, *args, **kwargs)

    def recording_summary(name: str, rate: float, latencies: list[float]) -> None:
        figures[name] = (rate, "req/s")
        figures[f"{name}  p50"] = (statistics.median(latencies) * 1000, "ms")
        summary(name, rate, latencies)

    bench.report, bench._summary = recording_report, recording_summary
    try:
        yield figures
    finally:
        bench.report, bench._summary = report, summary


def compare_with_glance(bench: ModuleType, parts: set[str], size: int, requests: int, workdir: Path) -> None:
    """Run run.py's data and metadata sections on a fresh Glimpse, then on Glance, and print Glimpse/Glance.

    Both servers use SQLite and the file store on the same disk; Glimpse with its default worker count,
    Glance with gunicorn's 2 workers (as deployed by devstack-like setups, minus keystone).
    """
    from tests.functional.server import GlimpseServer

    parts = parts & {"data", "metadata"}
    if not parts:
        return
    print("\n=== The same sections against OpenStack Glance, Glimpse first, back to back ===", flush=True)
    results: dict[str, dict[str, tuple[float, str]]] = {}
    servers = {"Glimpse": lambda d: GlimpseServer(d), "Glance": lambda d: GlanceServer(d)}
    for name, make in servers.items():
        print(f"\n--- {name} ---", flush=True)
        with _recording(bench) as figures:
            server = make(workdir / name.lower()).start()
            try:
                if "data" in parts:
                    bench.bench_data(server, size, workdir)
                if "metadata" in parts:
                    bench.bench_metadata(server, f"SQLite ({name})", requests)
                figures["server peak RSS over the run, all processes"] = (tree_peak_rss_mib(server.proc.pid), "MiB")
            finally:
                server.stop()
        results[name] = figures
    print("\nGlimpse / Glance (rates: above 1 is Glimpse faster; ms and MiB: below 1 is Glimpse smaller)")
    for label, (mine, unit) in results["Glimpse"].items():
        if label in results["Glance"]:
            theirs = results["Glance"][label][0]
            ratio = f"{mine / theirs:6.2f}x" if theirs else "     -"
            print(f"  {label:<52} {mine:>9.1f} vs {theirs:>9.1f} {unit:<6} {ratio}", flush=True)


def _smoke() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp, GlanceServer(Path(tmp)) as glance:
        print(f"glance at {glance.url}, pids {glance.pids()}, peak RSS {glance.peak_rss_mib():.0f} MiB")
        with httpx.Client(base_url=glance.url, timeout=60) as client:
            image = client.post("/v2/images", json={"name": "smoke", "disk_format": "raw", "container_format": "bare"})
            print("create", image.status_code, image.json().get("owner"), image.json().get("status"))
            uid = image.json()["id"]
            put = client.put(f"/v2/images/{uid}/file", content=iter([b"x" * 1000, b"y" * 24]),
                             headers={"Content-Type": "application/octet-stream"})  # fmt: skip
            print("upload (chunked)", put.status_code, client.get(f"/v2/images/{uid}").json()["size"])
            print("download", client.get(f"/v2/images/{uid}/file").content[-3:])
            print(
                "list", client.get("/v2/images").status_code, "delete", client.delete(f"/v2/images/{uid}").status_code
            )
    return 0


if __name__ == "__main__":
    sys.exit(_smoke())
