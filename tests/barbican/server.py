"""A real Barbican for the functional tests of signed images: PyPI `barbican` from its own venv, on SQLite, behind the
test Keystone (keystonemiddleware validates every token), served by gunicorn.

The venv comes from `scripts/install-barbican`; nothing here imports barbican, so this module runs in the test venv
and drives Barbican only through its HTTP API. Its configuration (barbican.conf and the paste pipeline) is written
into its own work folder, which is also the process's HOME: oslo.config finds ~/.barbican/barbican.conf there.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.keystone.server import (
    KeystoneServer,
    free_port,
    gunicorn_argv,
    log_tail,
    run_install_script,
    stop_process_group,
)
from tests.keystone.setup import authtoken_options, register_service

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "scripts" / "install-barbican"
BARBICAN_VENV = Path(os.environ.get("GLIMPSE_BARBICAN_VENV", ROOT / ".venv-barbican"))

# Barbican's own pipeline, keystone flavour: every /v1 request carries a token keystonemiddleware validates.
PASTE = """\
[composite:main]
use = egg:Paste#urlmap
/: barbican_version
/v1: barbican-api-keystone

[pipeline:barbican_version]
pipeline = request_id microversion versionapp

[pipeline:barbican-api-keystone]
pipeline = request_id authtoken context microversion apiapp

[app:apiapp]
paste.app_factory = barbican.api.app:create_main_app

[app:versionapp]
paste.app_factory = barbican.api.app:create_version_app

[filter:context]
paste.filter_factory = barbican.api.middleware.context:ContextMiddleware.factory

[filter:microversion]
paste.filter_factory = barbican.api.middleware.microversion:MicroversionMiddleware.factory

[filter:authtoken]
paste.filter_factory = keystonemiddleware.auth_token:filter_factory

[filter:request_id]
paste.filter_factory = oslo_middleware.request_id:RequestId.factory
"""

# gunicorn's entry: the paste pipeline above (Barbican's own entry point reads /etc/barbican).
WSGI_ENTRY = """\
import sys

sys.argv = sys.argv[:1]

from paste import deploy

application = deploy.loadapp("config:{paste}")
"""


def install_barbican(timeout: float = 900) -> None:
    """Run scripts/install-barbican: a no-op (well under a second) once the venv is in place."""
    run_install_script(INSTALL_SCRIPT, "GLIMPSE_BARBICAN_VENV", BARBICAN_VENV, timeout)


class BarbicanServer:
    """One Barbican on 127.0.0.1:<free port> (`url`), its database, key-encryption key, config and log in `workdir`.

    The simple crypto plugin keeps the secrets in the database, encrypted with a key made for this server. One
    gunicorn worker with one thread: Barbican on SQLite takes one writer at a time.
    """

    def __init__(self, workdir: Path, keystone: KeystoneServer, *, venv: Path = BARBICAN_VENV) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.keystone = keystone
        self.venv = Path(venv)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = self.workdir / ".barbican" / "barbican.conf"
        self.paste = self.workdir / "barbican-api-paste.ini"
        self.db = self.workdir / "barbican.db"
        self.log = self.workdir / "barbican.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _bin(self, name: str) -> str:
        path = self.venv / "bin" / name
        if not path.exists():
            raise RuntimeError(f"{path} is missing: install Barbican with scripts/install-barbican")
        return str(path)

    def _write_config(self) -> None:
        self.conf.parent.mkdir(exist_ok=True)
        kek = self.workdir / "kek"
        if not kek.exists():  # a Fernet key: the key-encryption key of the simple crypto plugin
            kek.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
        authtoken = "\n".join(f"{k} = {v}" for k, v in authtoken_options(self.keystone).items())
        self.conf.write_text(
            f"""\
[DEFAULT]
host_href = {self.url}
db_auto_create = true
debug = false
use_stderr = true

[database]
connection = sqlite:///{self.db}?timeout=60

[secretstore]
enabled_secretstore_plugins = store_crypto

[crypto]
enabled_crypto_plugins = simple_crypto

[simple_crypto_plugin]
kek = {kek.read_text()}

[keystone_authtoken]
{authtoken}
"""
        )
        self.paste.write_text(PASTE)
        (self.workdir / "barbican_wsgi.py").write_text(WSGI_ENTRY.format(paste=self.paste))

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "PYTHON"))}
        env["HOME"] = str(self.workdir)  # where oslo.config finds ~/.barbican/barbican.conf
        env["PYTHONWARNINGS"] = "ignore"
        return env

    def start(self, timeout: float = 120) -> BarbicanServer:
        if self.proc is not None:
            raise RuntimeError("BarbicanServer already started")
        self._write_config()
        with open(self.log, "ab") as log:
            log.write(b"\n$ gunicorn barbican_wsgi:application\n")
            log.flush()
            self.proc = subprocess.Popen(
                gunicorn_argv(self._bin("gunicorn"), self.port, self.workdir, "barbican_wsgi:application"),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.workdir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"Barbican (gunicorn) exited with {code} while starting:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as response:
                    if response.status in (200, 300):
                        break
            except urllib.error.HTTPError as exc:
                if exc.code == 300:  # the versions document answers "Multiple Choices"
                    break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Barbican did not answer GET {self.url} within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.2)
        return self

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        stop_process_group(proc)

    def log_tail(self, lines: int = 60) -> str:
        return log_tail(self.log, lines)


def register_key_manager(ks: KeystoneServer, url: str) -> None:
    """As `openstack service create --name barbican key-manager` and its endpoints in RegionOne: castellan finds
    Barbican in the caller's catalog, as in a real cloud."""
    register_service(ks, "key-manager", url, name="barbican")
