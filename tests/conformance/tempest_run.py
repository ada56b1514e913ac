"""Run OpenStack Tempest's image API tests against a real `glimpse serve` behind the real Keystone.

- `install_tempest()` runs scripts/install-tempest (its own venv, .venv-tempest);
- `glimpse_conf(...)` is the glance-api.conf that makes Glimpse look like the Glance Tempest expects: Keystone
  auth, two file stores and the http store, every import method, locations shown;
- `tempest_conf(...)` is the matching tempest.conf: dynamic credentials made by Keystone's admin, only the image
  service available, `[image]` / `[image-feature-enabled]` saying what Glimpse implements;
- `run_tempest(...)` runs `tempest run --regex '^tempest\\.api\\.image'` and returns one `Outcome` per test, read
  from the run's subunit stream by tests/conformance/subunit_summary.py inside Tempest's venv;
- `Expected.load(path)` reads tests/conformance/tempest-expected.txt: the recorded baseline of passes, the tests
  excluded from the run (a feature not built yet) and the tests Tempest skips, each with its reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = ROOT / "scripts" / "install-tempest"
TEMPEST_VENV = Path(os.environ.get("GLIMPSE_TEMPEST_VENV", ROOT / ".venv-tempest"))
SUMMARY_SCRIPT = Path(__file__).with_name("subunit_summary.py")
EXPECTED_FILE = Path(__file__).with_name("tempest-expected.txt")
REGEX = r"^tempest\.api\.image"
CONCURRENCY = 2  # the machine has two cores; Glimpse, Keystone and Tempest share them
STORES = ("alpha", "beta")  # two file stores, so the multi-store import and copy-image tests run

_ATTRIBUTES = re.compile(r"\[[^\]]*\]$")  # "test_x[id-...,smoke]": Tempest's id and tags after the name


def install_tempest(timeout: float = 900) -> None:
    """Run scripts/install-tempest: a no-op (well under a second) once the venv is in place."""
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "GLIMPSE_TEMPEST_VENV": str(TEMPEST_VENV)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/install-tempest failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


def bare_name(test_id: str) -> str:
    """A subunit test id without Tempest's trailing `[id-...,tags]`."""
    return _ATTRIBUTES.sub("", test_id)


class FileServer:
    """A plain web server on 127.0.0.1 for `directory`: what web-download and the http store read in place of
    the internet (Tempest's defaults for http_image and http_qcow2_image point at download.cirros-cloud.net)."""

    def __init__(self, directory: Path) -> None:
        handler = partial(_QuietHandler, directory=str(directory))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def glimpse_conf(authtoken_section: str, file_server_port: int, cache_dir: Path) -> str:
    """glance-api.conf (after `[DEFAULT]\\nbind_port = ...`) for the Glimpse Tempest talks to, its image cache on as
    Glance turns it on (image_cache_dir and the keystone+cachemanagement pipeline)."""
    sections = [
        f"image_cache_dir = {cache_dir}",
        f"enabled_backends = {', '.join(f'{store}:file' for store in STORES)}, web:http",
        "show_multiple_locations = true",
        "enabled_import_methods = glance-direct, web-download, copy-image, glance-download",
        "[glance_store]",
        f"default_backend = {STORES[0]}",
        *(
            f"[{store}]\nstore_description = File store {store}\nweight = {10 * (len(STORES) - i)}"
            for i, store in enumerate(STORES)
        ),
        "[web]\nstore_description = Read-only web server",
        # web-download and locations fetch Tempest's images from the local file server only.
        f"[import_filtering_opts]\nallowed_hosts = 127.0.0.1\nallowed_ports = {file_server_port}",
        f"[egress]\nhttp_store_allowed_hosts = 127.0.0.1:{file_server_port}",
        "[paste_deploy]\nflavor = keystone+cachemanagement",
        authtoken_section,
    ]
    return "\n".join(sections) + "\n"


def tempest_conf(
    *,
    auth_url: str,
    admin_user: str,
    admin_password: str,
    admin_project: str,
    region: str,
    file_server_url: str,
    log_file: Path,
    lock_path: Path,
) -> str:
    """tempest.conf: Keystone v3 with dynamic credentials, only the image service, Glimpse's features."""
    services = ("cinder", "neutron", "nova", "swift", "heat", "horizon", "placement")
    lines = [
        "[DEFAULT]",
        f"log_file = {log_file}",
        "use_stderr = false",
        "[oslo_concurrency]",
        f"lock_path = {lock_path}",
        "[auth]",
        "use_dynamic_credentials = true",
        "create_isolated_networks = false",
        f"admin_username = {admin_user}",
        f"admin_password = {admin_password}",
        f"admin_project_name = {admin_project}",
        "admin_domain_name = Default",
        "[identity]",
        f"uri_v3 = {auth_url}",
        "auth_version = v3",
        f"region = {region}",
        "disable_ssl_certificate_validation = true",
        "[identity-feature-enabled]",
        "api_v2 = false",
        "[service_available]",
        "glance = true",
        *(f"{service} = false" for service in services),
        "[image]",
        "build_timeout = 60",
        "build_interval = 1",
        f"http_image = {file_server_url}/cirros.img",
        f"http_qcow2_image = {file_server_url}/cirros.qcow2",
        "container_formats = bare,ami,ari,aki,ovf,ova",
        "disk_formats = qcow2,raw,ami,ari,aki,vhd,vmdk,vdi,iso,vhdx",
        "hashing_algorithm = sha512",
        "image_caching_enabled = true",
        "[image-feature-enabled]",
        "import_image = true",
        "os_glance_reserved = true",
        "manage_locations = true",
        "http_store_enabled = true",
        "do_secure_hash = true",
        "image_conversion = false",
        "image_format_enforcement = true",
        "store_weight_enabled = true",
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Outcome:
    name: str  # the test id without Tempest's [id-...] attributes
    status: str  # success, fail, skip, xfail, uxsuccess
    reason: str = ""  # why it skipped, or the failure's traceback


def run_tempest(
    workdir: Path, conf_file: Path, exclude_file: Path, *, timeout: float = 900
) -> tuple[list[Outcome], subprocess.CompletedProcess[str]]:
    """`tempest run` in `workdir` (its .stestr.conf and stream live there); returns each test's outcome."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OS_")}
    env["TEMPEST_CONFIG"] = str(conf_file)  # tempest's libraries read it besides --config-file
    command = [
        str(TEMPEST_VENV / "bin" / "tempest"),
        "run",
        "--config-file", str(conf_file),
        "--regex", REGEX,
        "--exclude-list", str(exclude_file),
        "--concurrency", str(CONCURRENCY),
    ]  # fmt: skip
    run = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    summary = subprocess.run(
        [str(TEMPEST_VENV / "bin" / "python"), str(SUMMARY_SCRIPT), str(workdir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    outcomes = [Outcome(bare_name(item["id"]), item["status"], item["reason"]) for item in json.loads(summary.stdout)]
    return outcomes, run


@dataclass
class Expected:
    """tests/conformance/tempest-expected.txt: `baseline-passed: N`, then `exclude <test> -- <reason>` and
    `skip <test> -- <reason>` lines; `#` starts a comment."""

    baseline_passed: int = 0
    excluded: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = EXPECTED_FILE) -> Expected:
        expected = cls()
        for number, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("baseline-passed:"):
                expected.baseline_passed = int(line.split(":", 1)[1])
                continue
            kind, _, rest = line.partition(" ")
            name, sep, reason = rest.partition(" -- ")
            if kind not in ("exclude", "skip") or not sep or not reason.strip():
                raise ValueError(f"{path}:{number}: want 'exclude|skip <test> -- <reason>', got {raw!r}")
            target = expected.excluded if kind == "exclude" else expected.skipped
            target[name.strip()] = reason.strip()
        return expected

    def exclude_list(self) -> str:
        """Tempest's --exclude-list: one regular expression a line, each matching one test exactly."""
        return "".join(f"^{re.escape(name)}(\\[|\\.|$)\n" for name in sorted(self.excluded))
