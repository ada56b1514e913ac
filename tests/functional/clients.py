"""Run the real OpenStack clients (openstack, glance, openstacksdk) from their own virtualenv."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLIENTS_VENV = Path(os.environ.get("GLIMPSE_CLIENTS_VENV", ROOT / ".venv-clients"))


def _bin(name: str) -> str:
    path = CLIENTS_VENV / "bin" / name
    if not path.exists():
        raise RuntimeError(
            f"{path} is missing: the functional tests drive the real OpenStack clients; "
            "install them with scripts/test (or set GLIMPSE_CLIENTS_VENV)."
        )
    return str(path)


def _close_stdin() -> None:
    os.close(0)


class Clients:
    def __init__(self, endpoint: str, home: Path, keystone_env: dict[str, str] | None = None) -> None:
        """keystone_env: OS_* variables of a Keystone user; without them the clients skip Keystone."""
        self.endpoint = endpoint
        self.keystone_env = keystone_env
        self.home = home  # glanceclient caches schemas under ~/.glanceclient
        home.mkdir(parents=True, exist_ok=True)

    def _env(self, program: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["HOME"] = str(self.home)
        if self.keystone_env is not None:  # the clients find the image endpoint in Keystone's catalog
            env.update(self.keystone_env)
        elif program == "glance":  # glanceclient skips Keystone when given both an image URL and a token
            env.update(OS_IMAGE_URL=self.endpoint, OS_AUTH_TOKEN="glimpse-noauth")
        else:
            env.update(OS_AUTH_TYPE="none", OS_ENDPOINT=self.endpoint)
        return env

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [_bin(program), *args],
            capture_output=True,
            text=True,
            env=self._env(program),
            timeout=120,
            # Both clients read a piped stdin as image data. glance skips a closed stdin; openstack needs
            # one to exist, so it gets an empty one (and uploads zero bytes when no --file is given).
            stdin=None if program == "glance" else subprocess.DEVNULL,
            preexec_fn=_close_stdin if program == "glance" else None,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{program} {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def openstack(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("openstack", *args, check=check)

    def openstack_json(self, *args: str) -> Any:
        return json.loads(self.openstack(*args, "-f", "json").stdout)

    def glance(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("glance", "--os-image-api-version", "2", *args, check=check)

    def sdk(self, script: str) -> Any:
        """Run a Python snippet with `conn` (an openstacksdk Connection) bound; it prints JSON to stdout."""
        prelude = (
            "import json, openstack\n"
            f"conn = openstack.connection.Connection(auth_type='none', image_endpoint_override={self.endpoint!r})\n"
        )
        result = subprocess.run(
            [_bin("python"), "-c", prelude + script], capture_output=True, text=True, env=self._env("sdk"), timeout=120
        )
        if result.returncode != 0:
            raise AssertionError(f"openstacksdk script failed:\n{result.stdout}\n{result.stderr}")
        return json.loads(result.stdout) if result.stdout.strip() else None
