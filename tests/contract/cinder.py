"""A real OpenStack Cinder for the cinder store tests: PyPI `cinder` from its own venv (scripts/install-cinder),
cinder-api under gunicorn, cinder-scheduler and cinder-volume, all on loopback, with

- the tests' Keystone (tests/keystone): the `volumev3` service and its endpoints in the catalog, cinder-api
  validating tokens as the service user `glance`, who also owns the image volumes (project `service`);
- the tests' throwaway Ceph (tests/contract/ceph.py): a pool `volumes` and a user `client.cinder-<tag>` with
  `profile rbd` on it, for the RBD volume driver. As in a real deployment, the node that attaches volumes
  (Glimpse's os-brick) finds that user's keyring in /etc/ceph/ceph.client.<user>.keyring (Cinder no longer
  sends keyrings, OSSN-0085): the user's name is unique to the run and the file is removed at stop;
- the machine's MariaDB (a private database) and RabbitMQ (a private vhost), both removed at stop.

If Cinder cannot start, the tests fail with the services' logs (never skipped).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pymysql

from glimpse.store.cinder_volumes import CinderAccess, make_client
from tests.contract.ceph import CephCluster
from tests.contract.servers import free_port
from tests.keystone.server import KeystoneServer
from tests.keystone.setup import INTERFACES, SERVICE_PROJECT, SERVICE_USER, _check, _find, admin_client, password_for

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("GLIMPSE_CINDER_VENV", ROOT / ".venv-cinder"))
POOL = "volumes"
ETC_CEPH = Path("/etc/ceph")
RABBIT = "amqp://guest:guest@127.0.0.1:5672"
START_TIMEOUT = 180.0

WSGI_ENTRY = """\
import sys
sys.argv = ["cinder-api", "--config-file", {conf!r}]
from cinder.wsgi.api import application  # noqa: E402,F401
"""


class CinderError(RuntimeError):
    pass


def install_cinder(timeout: float = 900) -> None:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "install-cinder")], capture_output=True, text=True,
                          timeout=timeout, check=False)  # fmt: skip
    if done.returncode != 0:
        raise CinderError(f"scripts/install-cinder failed: {done.stderr[-3000:]}")


class CinderServices:
    def __init__(self, workdir: Path, keystone: KeystoneServer, ceph: CephCluster) -> None:
        self.dir = workdir.absolute()
        self.keystone = keystone
        self.ceph = ceph
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v3"
        tag = uuid.uuid4().hex[:10]
        self.database = f"glimpse_cinder_{tag}"
        self.vhost = f"glimpse-cinder-{tag}"
        self.conf = self.dir / "cinder.conf"
        self.ceph_user = f"cinder-{tag}"
        self.keyring = ceph.dir / f"ceph.client.{self.ceph_user}.keyring"  # where ceph.conf's [client] keyring is
        self.node_keyring = ETC_CEPH / f"ceph.client.{self.ceph_user}.keyring"  # where os-brick looks
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.user = SERVICE_USER
        self.password = password_for(SERVICE_USER)
        self.project = SERVICE_PROJECT

    def access(self, **kwargs: Any) -> CinderAccess:
        """How a store reaches this Cinder: as the service user, the endpoint from the catalog."""
        options: dict[str, Any] = {
            "auth_url": self.keystone.url,
            "user": self.user,
            "password": self.password,
            "project": self.project,
            "region": self.keystone.region,
        }
        options.update(kwargs)
        return CinderAccess(**options)

    def client(self) -> Any:
        return make_client(self.access())

    # --- set-up ----------------------------------------------------------------------------------
    def _write_conf(self) -> None:
        ks = self.keystone
        (self.dir / "state").mkdir(exist_ok=True)
        (self.dir / "locks").mkdir(exist_ok=True)
        (self.dir / "log").mkdir(exist_ok=True)
        self.conf.write_text(
            f"""[DEFAULT]
transport_url = rabbit://guest:guest@127.0.0.1:5672/{self.vhost}
auth_strategy = keystone
enabled_backends = ceph
state_path = {self.dir}/state
log_dir = {self.dir}/log
my_ip = 127.0.0.1
host = glimpse-cinder
api_paste_config = {VENV}/etc/cinder/api-paste.ini
report_interval = 2
periodic_interval = 10
rpc_response_timeout = 60
quota_volumes = -1
quota_gigabytes = -1
quota_snapshots = -1
quota_backups = -1
quota_backup_gigabytes = -1

[database]
connection = mysql+pymysql://root@127.0.0.1:3306/{self.database}?charset=utf8

[keystone_authtoken]
www_authenticate_uri = {ks.base_url}
auth_url = {ks.base_url}
auth_type = password
username = {self.user}
password = {self.password}
project_name = {self.project}
user_domain_name = Default
project_domain_name = Default
region_name = {ks.region}

[oslo_concurrency]
lock_path = {self.dir}/locks

[ceph]
volume_driver = cinder.volume.drivers.rbd.RBDDriver
volume_backend_name = ceph
rbd_pool = {POOL}
rbd_user = {self.ceph_user}
rbd_ceph_conf = {self.ceph.conf}
rados_connect_timeout = 10
"""
        )

    def _prepare_ceph(self) -> None:
        pools = self.ceph.ceph("osd", "pool", "ls")
        if POOL not in pools.split():
            self.ceph.ceph("osd", "pool", "create", POOL, "8", "8", "replicated")
            self.ceph.ceph("osd", "pool", "application", "enable", POOL, "rbd")
        caps = ("mon", "profile rbd", "osd", f"profile rbd pool={POOL}", "mgr", f"profile rbd pool={POOL}")
        self.ceph.ceph("auth", "get-or-create", f"client.{self.ceph_user}", *caps, "-o", str(self.keyring))
        ETC_CEPH.mkdir(exist_ok=True)
        self.node_keyring.write_bytes(self.keyring.read_bytes())
        self.node_keyring.chmod(0o600)

    def _prepare_database(self) -> None:
        with pymysql.connect(host="127.0.0.1", user="root", password="") as db, db.cursor() as cur:
            cur.execute(f"CREATE DATABASE {self.database} CHARACTER SET utf8")

    def _prepare_rabbit(self) -> None:
        _run("rabbitmqctl", "add_vhost", self.vhost)
        _run("rabbitmqctl", "set_permissions", "-p", self.vhost, "guest", ".*", ".*", ".*")

    def _register(self) -> None:
        """The volumev3 service and its endpoints (as `openstack service create volumev3` and so on)."""
        with admin_client(self.keystone) as client:
            service = _find(client, "services", type="volumev3")
            if service is None:
                body = {"service": {"name": "cinderv3", "type": "volumev3", "enabled": True}}
                service = _check(client.post("services", json=body))["service"]
            for endpoint in _check(client.get("endpoints", params={"service_id": service["id"]}))["endpoints"]:
                _check(client.delete(f"endpoints/{endpoint['id']}"))
            for interface in INTERFACES:
                body = {"endpoint": {"service_id": service["id"], "interface": interface, "url": self.url,
                                     "region_id": self.keystone.region, "enabled": True}}  # fmt: skip
                _check(client.post("endpoints", json=body))

    def _unregister(self) -> None:
        with admin_client(self.keystone) as client:
            service = _find(client, "services", type="volumev3")
            if service is None:
                return
            for endpoint in _check(client.get("endpoints", params={"service_id": service["id"]}))["endpoints"]:
                _check(client.delete(f"endpoints/{endpoint['id']}"))
            _check(client.delete(f"services/{service['id']}"))

    def _bin(self, name: str) -> str:
        path = VENV / "bin" / name
        if not path.exists():
            raise CinderError(f"{path} is missing: install Cinder with scripts/install-cinder")
        return str(path)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
        env["PYTHONWARNINGS"] = "ignore"
        env["PATH"] = f"{VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"  # the RBD driver runs the ceph CLI
        return env

    def _daemon(self, name: str, *args: str) -> None:
        with open(self.dir / "log" / f"{name}.out", "ab") as log:
            self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self._env(),
                                                cwd=self.dir, start_new_session=True)  # fmt: skip

    # --- life cycle ------------------------------------------------------------------------------
    def start(self) -> CinderServices:
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_conf()
        self._prepare_ceph()
        self._prepare_database()
        self._prepare_rabbit()
        self._register()
        done = subprocess.run([self._bin("cinder-manage"), "--config-file", str(self.conf), "db", "sync"],
                              capture_output=True, text=True, env=self._env(), timeout=300, check=False)  # fmt: skip
        if done.returncode != 0:
            raise CinderError(f"cinder-manage db sync failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
        entry = self.dir / "cinder_api_wsgi.py"
        entry.write_text(WSGI_ENTRY.format(conf=str(self.conf)))
        self._daemon("cinder-api", self._bin("gunicorn"), "--chdir", str(self.dir), "--bind", f"127.0.0.1:{self.port}",
                     "--workers", "1", "--threads", "4", "--timeout", "300", "cinder_api_wsgi:application")  # fmt: skip
        self._daemon("cinder-scheduler", self._bin("cinder-scheduler"), "--config-file", str(self.conf))
        self._daemon("cinder-volume", self._bin("cinder-volume"), "--config-file", str(self.conf))
        self._wait("cinder-api to answer", self._api_up)
        self._wait("cinder-volume and cinder-scheduler to report up", self._services_up)

    def _api_up(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/", timeout=5).status_code in (200, 300)
        except httpx.HTTPError:
            return False

    def _services_up(self) -> bool:
        services = self.client().services.list()
        up = {s.binary for s in services if s.state == "up" and s.status == "enabled"}
        return {"cinder-volume", "cinder-scheduler"} <= up

    def _wait(self, what: str, ready: Any, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise CinderError(f"{name} exited with {proc.returncode}.{self.logs()}")
            try:
                if ready():
                    return
            except Exception as exc:
                last = exc
            time.sleep(1.0)
        raise CinderError(f"Timed out after {timeout:.0f} s waiting for {what}: {last}{self.logs()}")

    def logs(self, lines: int = 25) -> str:
        out = []
        folder = self.dir / "log"
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"\n--- {path.name} (last lines) ---\n" + "\n".join(tail))
        return "".join(out)

    def stop(self) -> None:
        for name in ("cinder-api", "cinder-volume", "cinder-scheduler"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.node_keyring.unlink(missing_ok=True)
        for cleanup in (self._drop_database, self._drop_vhost, self._unregister):
            try:
                cleanup()
            except Exception:  # the other clean-ups still run
                pass

    def _drop_database(self) -> None:
        with pymysql.connect(host="127.0.0.1", user="root", password="") as db, db.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {self.database}")

    def _drop_vhost(self) -> None:
        _run("rabbitmqctl", "delete_vhost", self.vhost)


def _run(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise CinderError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout
