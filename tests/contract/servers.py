"""Real servers the store tests talk to on loopback: an S3-compatible server (moto_server), an all-in-one
OpenStack Swift (proxy, account, container and object servers with tempauth, from scripts/install-swift)
and a web server with Range support for the read-only http store.

Both are started once per test run by the fixtures in tests/contract/fixtures.py; if one cannot start,
the tests that need it fail with the reason (they are never skipped).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
REPO = Path(__file__).resolve().parents[2]
SWIFT_VENV = Path(os.environ.get("GLIMPSE_SWIFT_VENV", REPO / ".venv-swift"))
ACCESS_KEY = "glimpse-test-access"
SECRET_KEY = "glimpse-test-secret"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    """moto's standalone S3-compatible HTTP server in its own process."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "moto_server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> S3Server:
        if not MOTO_SERVER.exists():
            raise RuntimeError(
                f"{MOTO_SERVER} is missing: the s3 store tests need a real S3-compatible server; "
                "install the test extras with scripts/test (pip install -e '.[test]', which brings moto[server])."
            )
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                self.client().list_buckets()
                return self
            except Exception:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.url} within 30 s:\n{self.log.read_text()}")

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10),
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# Swift's tempauth account and users: account "test", an admin "tester".
SWIFT_ACCOUNT = "test"
SWIFT_USER = "test:tester"
SWIFT_KEY = "testing"

_SWIFT_CONF = """\
[swift-hash]
swift_hash_path_suffix = glimpse-tests
swift_hash_path_prefix = glimpse

[storage-policy:0]
name = one-replica
default = yes
"""

# The backend servers: one process each (workers = 0), no mount check (the device is a plain folder).
_BACKEND_CONF = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
swift_dir = {swift_dir}
devices = {devices}
mount_check = false
disable_fallocate = true
log_name = {kind}-server
log_level = WARNING

[pipeline:main]
pipeline = {kind}-server

[app:{kind}-server]
use = egg:swift#{kind}
"""

# The proxy: tempauth (tokens in memcached), static and dynamic large objects, server-side copy.
_PROXY_CONF = """\
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = {port}
workers = 0
swift_dir = {swift_dir}
log_name = proxy-server
log_level = WARNING

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats tempauth copy slo dlo \
proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
user_{account}_{user} = {key} .admin .reseller_admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:{memcached_port}

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo
"""

# Builds the three rings (one replica, one device on 127.0.0.1) with Swift's own RingBuilder, in one
# process rather than nine swift-ring-builder runs.
_BUILD_RINGS = """\
import sys
from swift.common.ring import RingBuilder

swift_dir = sys.argv[1]
for kind, port in zip(("account", "container", "object"), sys.argv[2:5]):
    builder = RingBuilder(6, 1, 0)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port), "device": "d1",
                     "weight": 100, "meta": ""})
    builder.rebalance()
    builder.save(f"{swift_dir}/{kind}.builder")
    builder.get_ring().save(f"{swift_dir}/{kind}.ring.gz")
"""


class SwiftServer:
    """An all-in-one OpenStack Swift on loopback: memcached, then the account, container, object and proxy
    servers, each its own process, with one device on a folder (the folder's filesystem must take the user
    xattrs Swift keeps object metadata in: checked before start-up)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.swift_dir = workdir / "etc"
        self.devices = workdir / "srv"
        self.port = free_port()
        self.auth_url = f"http://127.0.0.1:{self.port}/auth/v1.0"
        self.storage_url = f"http://127.0.0.1:{self.port}/v1/AUTH_{SWIFT_ACCOUNT}"
        self.user, self.key = SWIFT_USER, SWIFT_KEY
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def _binary(self, name: str) -> Path:
        path = SWIFT_VENV / "bin" / name
        if not path.exists():
            raise RuntimeError(
                f"{path} is missing: the swift store tests need a real OpenStack Swift; install it with "
                "scripts/install-swift (scripts/test runs it)."
            )
        return path

    def _spawn(self, name: str, args: list[str]) -> None:
        log = self.workdir / f"{name}.log"
        self.logs.append(log)
        with open(log, "ab") as out:
            self.procs.append(
                subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True)
            )

    def _check_xattrs(self) -> None:
        probe = self.devices / "d1" / ".xattr-probe"
        probe.write_bytes(b"")
        try:
            os.setxattr(probe, "user.swift.probe", b"x" * 254)
        except OSError as exc:
            raise RuntimeError(
                f"The filesystem of {self.devices} does not take user xattrs ({exc}); Swift keeps object "
                "metadata in them. Point the test run's temporary folder (pytest --basetemp) at ext4 or xfs."
            ) from exc
        finally:
            probe.unlink()

    def _tail_logs(self) -> str:
        tails = [f"--- {log.name}:\n{log.read_text(errors='replace')[-3000:]}" for log in self.logs if log.exists()]
        return "\n".join(tails)

    def start(self) -> SwiftServer:
        python = self._binary("python")
        self.swift_dir.mkdir(parents=True, exist_ok=True)
        (self.devices / "d1").mkdir(parents=True, exist_ok=True)
        self._check_xattrs()
        ports = {kind: free_port() for kind in ("account", "container", "object")}
        memcached_port = free_port()
        (self.swift_dir / "swift.conf").write_text(_SWIFT_CONF)
        for kind, port in ports.items():
            (self.swift_dir / f"{kind}-server.conf").write_text(
                _BACKEND_CONF.format(port=port, swift_dir=self.swift_dir, devices=self.devices, kind=kind)
            )
        (self.swift_dir / "proxy-server.conf").write_text(
            _PROXY_CONF.format(
                port=self.port,
                swift_dir=self.swift_dir,
                memcached_port=memcached_port,
                account=SWIFT_ACCOUNT,
                user=SWIFT_USER.split(":", 1)[1],
                key=SWIFT_KEY,
            )
        )
        rings = subprocess.run(
            [str(python), "-c", _BUILD_RINGS, str(self.swift_dir), *map(str, ports.values())],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if rings.returncode != 0:
            raise RuntimeError(f"Building Swift's rings failed:\n{rings.stderr}")
        memcached = shutil.which("memcached")
        if memcached is None:
            raise RuntimeError("memcached is missing: Swift's tempauth keeps tokens in it; scripts/test installs it.")
        self._spawn("memcached", [memcached, "-l", "127.0.0.1", "-p", str(memcached_port), "-U", "0", "-u", "root"])
        for kind in ("account", "container", "object", "proxy"):
            conf = self.swift_dir / f"{kind}-server.conf"
            self._spawn(f"{kind}-server", [str(self._binary(f"swift-{kind}-server")), str(conf), "--verbose"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    args = " ".join(map(str, proc.args))  # type: ignore[arg-type]
                    self.stop()
                    raise RuntimeError(f"{args} exited with {proc.returncode}:\n{self._tail_logs()}")
            if self._ready():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Swift did not answer on {self.auth_url} within 30 s:\n{self._tail_logs()}")

    def _ready(self) -> bool:
        """Authenticated and able to write: a container PUT goes through account, container and ring."""
        import urllib.request

        try:
            request = urllib.request.Request(self.auth_url, headers={"X-Auth-User": self.user, "X-Auth-Key": self.key})
            with urllib.request.urlopen(request, timeout=2) as answer:
                token = answer.headers["X-Auth-Token"]
            put = urllib.request.Request(
                f"{self.storage_url}/glimpse-ready", method="PUT", headers={"X-Auth-Token": token}
            )
            with urllib.request.urlopen(put, timeout=5) as answer:
                return answer.status in (201, 202)
        except OSError:
            return False

    def connection(self):  # type: ignore[no-untyped-def]
        """A swiftclient connection as the test user (for checks behind the store's back)."""
        from swiftclient import client

        return client.Connection(self.auth_url, self.user, self.key, auth_version="1", retries=0)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.procs = []


class _RangeHandler(SimpleHTTPRequestHandler):
    """Files of a folder, with single `bytes=a-b` / `bytes=-n` ranges (206) as image servers offer."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        size = path.stat().st_size
        start, end = 0, size - 1
        header = self.headers.get("Range")
        match = _RANGE.match(header.replace(" ", "")) if header else None
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:
                start = max(size - int(match.group(2)), 0)
            if start >= size or end < start:
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            self.send_response(HTTPStatus.PARTIAL_CONTENT)
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        else:
            self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1 if size else 0))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        handle = open(path, "rb")
        handle.seek(start)
        self._remaining = end - start + 1 if size else 0
        return handle

    def copyfile(self, source, outputfile) -> None:  # type: ignore[no-untyped-def]
        remaining = self._remaining
        while remaining > 0:
            block = source.read(min(remaining, 64 * 1024))
            if not block:
                break
            outputfile.write(block)
            remaining -= len(block)


class WebServer:
    """A threaded web server on loopback serving `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

        def handler(*args, **kwargs):  # type: ignore[no-untyped-def]
            return _RangeHandler(*args, directory=str(root), **kwargs)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> WebServer:
        self._thread.start()
        return self

    def publish(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return f"{self.url}/{name}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
