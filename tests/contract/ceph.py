"""A real one-node Ceph cluster for the rbd store tests: one monitor, one manager and one OSD from
Debian's packages (ceph-mon, ceph-mgr, ceph-osd), all in the foreground under a temporary folder.

The cluster is throwaway: its own fsid, its own ceph.conf, the monitor on a free loopback port
(messenger v2 only), cephx everywhere, `osd pool default size = 1`, and an OSD on memstore (the data
lives in the OSD's memory, which is all a test run needs and starts in seconds). A pool `images` with
the rbd application enabled, and a `client.glance` user with Glance's documented caps on it
(`profile rbd`), are made at start. Nothing touches /etc/ceph or systemd.

Started once per test run by tests/contract/fixtures.py; if it cannot start, the tests that need it
fail with the reason and the daemons' logs (never skipped).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from tests.contract.servers import free_port

POOL = "images"
USER = "glance"  # rbd_store_user
DAEMONS = ("ceph-mon", "ceph-mgr", "ceph-osd", "ceph-authtool", "monmaptool", "ceph", "rbd", "rados")
START_TIMEOUT = 60.0


class CephError(RuntimeError):
    pass


class CephCluster:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir.absolute()
        self.fsid = str(uuid.uuid4())
        self.port = free_port()
        self.conf = self.dir / "ceph.conf"
        self.admin_keyring = self.dir / "ceph.client.admin.keyring"
        self.user = USER
        self.pool = POOL
        self.user_keyring = self.dir / f"ceph.client.{USER}.keyring"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # --- the cluster's files ---------------------------------------------------------------------
    def _write_conf(self) -> None:
        d = self.dir
        self.conf.write_text(
            f"""[global]
fsid = {self.fsid}
mon host = [v2:127.0.0.1:{self.port}]
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 2
mon data avail crit = 1
auth allow insecure global id reclaim = false
run dir = {d}/run
admin socket = {d}/run/$cluster-$name.asok
pid file = {d}/run/$cluster-$name.pid
log file = {d}/log/$cluster-$name.log
crash dir = {d}/crash
exec dir = {d}/run
mon data = {d}/mon/$cluster-$id
mgr data = {d}/mgr/$cluster-$id
osd data = {d}/osd/$cluster-$id

[mon]
keyring = {d}/mon/$cluster-$id/keyring

[mgr]
keyring = {d}/mgr/$cluster-$id/keyring
mgr initial modules =

[osd]
keyring = {d}/osd/$cluster-$id/keyring
osd objectstore = memstore
memstore device bytes = 2147483648
osd max object name len = 460
osd max object namespace len = 64
osd memory target = 1073741824
osd op num shards = 1
osd op num threads per shard = 2
# A killed client's watch lingers this long (30 s by default); the dead-writer tests wait it out.
osd client watch timeout = 8

[client]
keyring = {d}/ceph.$name.keyring
log file = {d}/log/$cluster-$name.log
"""
        )

    def _run(self, *args: str, timeout: float = 30) -> str:
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        except FileNotFoundError as exc:
            raise CephError(
                f"{args[0]} is missing: install Debian's ceph-mon, ceph-mgr, ceph-osd and ceph-common "
                "(scripts/test does)."
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise CephError(f"{' '.join(args)} did not finish in {timeout} s.{self._logs()}") from exc
        if done.returncode != 0:
            raise CephError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}{self._logs()}")
        return done.stdout

    def ceph(self, *args: str, timeout: float = 30) -> str:
        """The `ceph` CLI as client.admin."""
        return self._run("ceph", "--conf", str(self.conf), "--id", "admin", "--connect-timeout", "10", *args,
                         timeout=timeout)  # fmt: skip

    def rbd(self, *args: str) -> str:
        """The `rbd` CLI as client.admin, on the images pool unless told otherwise."""
        return self._run("rbd", "--conf", str(self.conf), "--id", "admin", *args)

    def _daemon(self, name: str, *args: str) -> None:
        with open(self.dir / "log" / f"{name}.out", "ab") as log:
            self.procs[name] = subprocess.Popen(
                [*args, "--conf", str(self.conf)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise CephError(f"{name} exited with {proc.returncode}.{self._logs()}")

    def _logs(self) -> str:
        out = []
        logs = self.dir / "log"
        if logs.is_dir():
            for path in sorted(logs.iterdir()):
                if path.is_file() and not path.name.startswith("ceph-client."):
                    tail = path.read_text(errors="replace").splitlines()[-15:]
                    out.append(f"\n--- {path.name} (last lines) ---\n" + "\n".join(tail))
        return "".join(out)

    # --- life cycle ------------------------------------------------------------------------------
    def start(self) -> CephCluster:
        missing = [tool for tool in DAEMONS if shutil.which(tool) is None]
        if missing:
            raise CephError(
                f"{', '.join(missing)} not found: the rbd store tests need a real Ceph; install Debian's "
                "ceph-mon, ceph-mgr, ceph-osd, ceph-common, python3-rados and python3-rbd (scripts/test does)."
            )
        started = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _start(self) -> None:
        d = self.dir
        for sub in ("run", "log", "crash", "mon/ceph-a", "mgr/ceph-x", "osd/ceph-0"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        self._write_conf()
        mon_keyring = d / "mon.keyring"
        self._run("ceph-authtool", "--create-keyring", str(mon_keyring), "--gen-key", "-n", "mon.",
                  "--cap", "mon", "allow *")  # fmt: skip
        self._run("ceph-authtool", "--create-keyring", str(self.admin_keyring), "--gen-key", "-n", "client.admin",
                  "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *",
                  "--cap", "mds", "allow *")  # fmt: skip
        self._run("ceph-authtool", str(mon_keyring), "--import-keyring", str(self.admin_keyring))
        monmap = d / "monmap"
        self._run("monmaptool", "--create", "--fsid", self.fsid, "--addv", "a", f"[v2:127.0.0.1:{self.port}]",
                  str(monmap))  # fmt: skip
        self._run("ceph-mon", "--conf", str(self.conf), "--mkfs", "-i", "a", "--monmap", str(monmap),
                  "--keyring", str(mon_keyring))  # fmt: skip
        self._daemon("mon.a", "ceph-mon", "-f", "-i", "a")
        self._wait("the monitor to form a quorum", lambda: bool(json.loads(self.ceph("quorum_status", "-f", "json",
                                                                              timeout=15))["quorum"]))  # fmt: skip

        # Manager and OSD keys, then the daemons.
        self.ceph("auth", "get-or-create", "mgr.x", "mon", "allow profile mgr", "osd", "allow *", "mds", "allow *",
                  "-o", str(d / "mgr/ceph-x/keyring"))  # fmt: skip
        self._daemon("mgr.x", "ceph-mgr", "-f", "-i", "x")
        osd_uuid = str(uuid.uuid4())
        osd_id = self.ceph("osd", "new", osd_uuid).strip()
        if osd_id != "0":
            raise CephError(f"ceph osd new gave id {osd_id}, expected 0.")
        self.ceph("auth", "get-or-create", "osd.0", "mon", "allow profile osd", "mgr", "allow profile osd",
                  "osd", "allow *", "-o", str(d / "osd/ceph-0/keyring"))  # fmt: skip
        self._run("ceph-osd", "--conf", str(self.conf), "-i", "0", "--mkfs", "--osd-uuid", osd_uuid, timeout=60)
        self._daemon("osd.0", "ceph-osd", "-f", "-i", "0")
        self._wait("the OSD to come up", lambda: json.loads(self.ceph("osd", "stat", "-f", "json"))["num_up_osds"] == 1)

        # The images pool, as Glance's deployment guides make it, and Glance's user with rbd caps on it.
        self.ceph("osd", "pool", "create", POOL, "8", "8", "replicated")
        self.ceph("osd", "pool", "application", "enable", POOL, "rbd")
        self.ceph("auth", "get-or-create", f"client.{USER}", "mon", "profile rbd", "osd", f"profile rbd pool={POOL}",
                  "mgr", f"profile rbd pool={POOL}", "-o", str(self.user_keyring))  # fmt: skip
        # Writes block until the pool's placement groups are active: a small object proves they are.
        self._wait("the images pool to accept writes", self._probe)

    def _probe(self) -> bool:
        probe = self.dir / "probe"
        probe.write_bytes(b"glimpse")
        self._run("rados", "--conf", str(self.conf), "--id", USER, "-p", POOL, "--rados-osd-op-timeout", "3",
                  "put", "glimpse-probe", str(probe))  # fmt: skip
        self._run("rados", "--conf", str(self.conf), "--id", USER, "-p", POOL, "rm", "glimpse-probe")
        return True

    def _wait(self, what: str, ready, timeout: float = START_TIMEOUT) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                if ready():
                    return
            except (CephError, ValueError, KeyError) as exc:
                last = exc
            time.sleep(0.5)
        raise CephError(f"Timed out after {timeout:.0f} s waiting for {what}: {last}{self._logs()}")

    def stop(self) -> None:
        for name in ("osd.0", "mgr.x", "mon.a"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
