"""A real Keystone for the functional tests: PyPI `keystone` from its own venv, on SQLite, served by gunicorn.

The venv comes from `scripts/install-keystone` (see `install_keystone()`); nothing here imports keystone, so this
module runs in the test venv and drives Keystone only through its command line and HTTP.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "scripts" / "install-keystone"
KEYSTONE_VENV = Path(os.environ.get("GLIMPSE_KEYSTONE_VENV", ROOT / ".venv-keystone"))

REGION = "RegionOne"

# The WSGI entry gunicorn loads. Keystone parses sys.argv as its own options: under gunicorn that would be gunicorn's
# command line, so it is cleared first. The import (the slow part) runs while keystone-manage sets up; the app is made
# once that is done (Keystone checks its key repositories then). Keystone's SystemExit on a bad set-up becomes an
# exception: gunicorn then stops with "Worker failed to boot" instead of starting a new worker forever.
WSGI_ENTRY = """\
import os
import sys
import time

sys.argv = sys.argv[:1]

from keystone.server.wsgi import initialize_public_application

READY = {ready!r}
deadline = time.monotonic() + 100
while not os.path.exists(READY):
    if time.monotonic() > deadline:
        raise RuntimeError(f"{{READY}} did not appear: keystone-manage did not finish setting up")
    time.sleep(0.05)
try:
    application = initialize_public_application()
except SystemExit as exc:
    raise RuntimeError(f"Keystone exited while loading: {{exc}}") from exc
"""


MANAGE_DRIVER = """\
import json, os, sys, traceback

from keystone.cmd import manage

conf, stages = json.loads(sys.argv[1])
for stage in stages:
    children = []
    for argv in stage:
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                sys.argv = ["keystone-manage", "--config-file", conf, *argv]
                manage.main()
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append((pid, argv[0]))
    failed = False
    for pid, name in children:
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        if code != 0:
            print(f"keystone-manage {name} exited with {code}", flush=True)
            failed = True
    if failed:
        sys.exit(1)
"""


def run_install_script(script: Path, venv_variable: str, venv: Path, timeout: float = 900) -> None:
    """Run one of scripts/install-*, which puts a service into its own venv (`venv_variable` names where)."""
    result = subprocess.run(
        ["bash", str(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, venv_variable: str(venv)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/{script.name} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def install_keystone(timeout: float = 900) -> None:
    """Run scripts/install-keystone: a no-op (well under a second) once the venv is in place."""
    run_install_script(INSTALL_SCRIPT, "GLIMPSE_KEYSTONE_VENV", KEYSTONE_VENV, timeout)


def stop_process_group(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to a server started in its own session (its master and workers), SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def gunicorn_argv(gunicorn: str, port: int, workdir: Path, app: str, workers: int = 1, threads: int = 1) -> list[str]:
    """gunicorn serving `app` (module:callable in `workdir`) on 127.0.0.1:port, logging to its stdout."""
    return [
        gunicorn,
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--chdir", str(workdir),
        "--timeout", "120",
        "--graceful-timeout", "5",
        "--no-control-socket",  # gunicorn >= 24 would share one in ~/.gunicorn between servers
        "--access-logfile", "-",
        "--error-logfile", "-",
        app,
    ]  # fmt: skip


def log_tail(log: Path, lines: int = 60) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KeystoneServer:
    """One Keystone on 127.0.0.1:<free port>, with all its state (database, keys, config, log) in `workdir`.

    After `start()`: `url` is the identity v3 endpoint (also what the catalog lists for public, internal and admin),
    and `admin_username` / `admin_password` / `admin_project` are the bootstrap admin's credentials (role `admin`
    on project `admin`, domain Default).

    One gunicorn worker with one thread by default, on purpose:
    - Keystone on SQLite cannot take concurrent writes: oslo.db opens deferred transactions, and one that read and then
      writes while another writer holds the lock gets "database is locked" at once (SQLite does not wait there, so
      the URL's ?timeout=60 does not help). Two threads creating and deleting users in parallel get HTTP 500s.
      With one thread requests queue in the listen backlog instead; each takes ~10 ms.
    - With one worker Keystone's in-memory cache stays coherent, and it makes requests ~20x faster (see
      _write_config). More workers turn the cache off.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        workers: int = 1,
        threads: int = 1,
        admin_password: str = "keystone-admin-secret",
        venv: Path = KEYSTONE_VENV,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.venv = Path(venv)
        self.workers = workers
        self.threads = threads
        self.bootstrapped = self.workdir / "bootstrapped"  # written once keystone-manage has set everything up
        # A workdir set up before keeps its port: its catalog names it.
        self.port = int(self.bootstrapped.read_text()) if self.bootstrapped.exists() else free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base_url}/v3"
        self.admin_username = "admin"
        self.admin_password = admin_password
        self.admin_project = "admin"
        self.region = REGION
        self.conf = self.workdir / "keystone.conf"
        self.db = self.workdir / "keystone.db"
        self.log = self.workdir / "keystone.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    # -- set-up ------------------------------------------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        path = self.venv / "bin" / name
        if not path.exists():
            raise RuntimeError(f"{path} is missing: install Keystone with scripts/install-keystone")
        return str(path)

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
        env["OS_KEYSTONE_CONFIG_DIR"] = str(self.workdir)  # where the WSGI app finds keystone.conf
        env["PYTHONWARNINGS"] = "ignore"  # eventlet and friends warn on import; keep the log readable
        return env

    def _write_config(self) -> None:
        fernet = self.workdir / "fernet-keys"
        credential = self.workdir / "credential-keys"
        # Keystone is chatty with its database (~200 queries to validate a token and list roles: ~250 ms on
        # SQLite); its in-memory cache makes that ~10 ms. The cache is per process, and Keystone invalidates it
        # only in the process that made a change, so it is on only when there is one worker.
        cache = "enabled = true\nbackend = dogpile.cache.memory" if self.workers == 1 else "enabled = false"
        self.conf.write_text(
            f"""\
[DEFAULT]
debug = false
use_stderr = true

[database]
connection = sqlite:///{self.db}?timeout=60
sqlite_synchronous = false

[token]
provider = fernet
expiration = 7200

[fernet_tokens]
key_repository = {fernet}
max_active_keys = 3

[fernet_receipts]
key_repository = {fernet}

[credential]
key_repository = {credential}

[identity]
# The minimum for bcrypt: every user creation and password check hashes, and tests make many of both.
password_hash_rounds = 4
# bcrypt's own limit: above it Keystone warns on every password it hashes or checks.
max_password_length = 72

[cache]
{cache}
"""
        )

    def _manage(self, *stages: list[list[str]]) -> None:
        """Run keystone-manage commands: the commands of a stage in parallel, the stages one after the other.

        One process imports Keystone (two seconds) and forks a child per command, which runs keystone-manage's own
        entry point with that command line: the same as running the `keystone-manage` script each time.
        """
        with open(self.log, "ab") as log:
            for stage in stages:
                for argv in stage:
                    log.write(f"$ keystone-manage --config-file {self.conf} {' '.join(argv)}\n".encode())
            log.flush()
            driver = subprocess.Popen(
                [self._bin("python"), "-c", MANAGE_DRIVER, json.dumps([str(self.conf), stages])],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.workdir,
                start_new_session=True,  # so that a hung command is ended with its parent
            )
            try:
                code = driver.wait(300)
            except subprocess.TimeoutExpired:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
                raise RuntimeError(f"keystone-manage did not finish within 300 s:\n{self.log_tail()}") from None
        if code != 0:
            raise RuntimeError(f"keystone-manage failed ({code}):\n{self.log_tail()}")

    def _prepare(self) -> None:
        """The schema, the key repositories, then bootstrap (which fills in the catalog).

        Bootstrap creates domain Default, the admin user, project `admin` and roles admin > manager > member > reader
        (each implying the next) and service, grants admin on `admin` (and on the system) to the admin user, and
        registers region RegionOne with the identity service and its public/internal/admin endpoints at `url`.
        """
        owner = [
            "--keystone-user",
            pwd.getpwuid(os.getuid()).pw_name,
            "--keystone-group",
            grp.getgrgid(os.getgid()).gr_name,
        ]
        bootstrap = [
            "bootstrap",
            "--bootstrap-password", self.admin_password,
            "--bootstrap-username", self.admin_username,
            "--bootstrap-project-name", self.admin_project,
            "--bootstrap-role-name", "admin",
            "--bootstrap-service-name", "keystone",
            "--bootstrap-region-id", self.region,
            "--bootstrap-admin-url", self.url,
            "--bootstrap-internal-url", self.url,
            "--bootstrap-public-url", self.url,
        ]  # fmt: skip
        # The key repositories do not touch the database: they are made while the schema is migrated.
        self._manage([["db_sync"], ["fernet_setup", *owner], ["credential_setup", *owner]], [bootstrap])
        # Readers no longer wait for writers (and vice versa): fewer "database is locked" under concurrent requests.
        con = sqlite3.connect(self.db)
        try:
            con.execute("PRAGMA journal_mode=WAL")
        finally:
            con.close()
        self.bootstrapped.write_text(f"{self.port}\n")

    # -- life cycle --------------------------------------------------------------------------------------------------

    def start(self, timeout: float = 120) -> KeystoneServer:
        started = time.monotonic()
        if self.proc is not None:
            raise RuntimeError("KeystoneServer already started")
        fresh = not self.bootstrapped.exists()
        if fresh:  # (again, after a set-up that failed half-way)
            for leftover in ("keystone.db", "keystone.db-wal", "keystone.db-shm"):
                (self.workdir / leftover).unlink(missing_ok=True)
            for keys in ("fernet-keys", "credential-keys"):
                shutil.rmtree(self.workdir / keys, ignore_errors=True)
            self._write_config()
        (self.workdir / "keystone_wsgi.py").write_text(WSGI_ENTRY.format(ready=str(self.bootstrapped)))
        with open(self.log, "ab") as log:
            log.write(b"\n$ gunicorn keystone_wsgi:application\n")
            log.flush()
            self.proc = subprocess.Popen(
                gunicorn_argv(
                    self._bin("gunicorn"),
                    self.port,
                    self.workdir,
                    "keystone_wsgi:application",
                    self.workers,
                    self.threads,
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.workdir,
                start_new_session=True,
            )
        if fresh:
            # The worker takes seconds to import Keystone: it does so while keystone-manage sets up.
            try:
                self._prepare()
            except BaseException:
                self.stop()
                raise
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"Keystone (gunicorn) exited with {code} while starting:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Keystone did not answer GET {self.url} within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)
        self.startup_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_process_group(proc)

    def __enter__(self) -> KeystoneServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log, lines)
