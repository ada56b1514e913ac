"""Tempest's image API tests against the real OpenStack Glance 33, configured as tests/conformance configures Glimpse.

A one-off measurement for comparison with Glimpse's conformance run (tests/conformance/tempest-expected.txt records
the result in its header). It starts the suite's real Keystone, Glance under gunicorn (benchmarks/install-glance)
with Keystone auth, two file stores and the http store, registers Glance as the image endpoint, and runs the same
`tempest run --regex '^tempest\\.api\\.image'` with nothing excluded. Prints each test's outcome and the totals.

    bash benchmarks/install-glance && bash scripts/install-tempest && bash scripts/install-keystone
    .venv/bin/python -m benchmarks.tempest_glance [--keep DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from benchmarks.glance_baseline import GlanceServer
from tests.conformance.tempest_run import STORES, Expected, FileServer, install_tempest, run_tempest, tempest_conf
from tests.keystone.server import KeystoneServer, install_keystone
from tests.keystone.setup import authtoken_conf, bootstrap_projects, register_image_service


class KeystoneGlance(GlanceServer):
    """Glance 33 with `[paste_deploy] flavor = keystone` and the stores and import options Glimpse runs with."""

    def __init__(self, workdir: Path, authtoken_section: str, file_server_port: int) -> None:
        super().__init__(workdir, workers=1, threads=8)
        self.authtoken_section = authtoken_section
        self.file_server_port = file_server_port

    def _write_config(self) -> None:
        w = self.workdir
        for sub in ("staging", "tasks", *STORES):
            (w / sub).mkdir(parents=True, exist_ok=True)
        paste = self.venv / "etc" / "glance" / "glance-api-paste.ini"
        stores = "".join(
            f"[{s}]\nfilesystem_store_datadir = {w / s}\nweight = {10 * (2 - i)}\n" for i, s in enumerate(STORES)
        )
        (w / "glance-api.conf").write_text(
            f"""[DEFAULT]
log_file = {w / "glance-api.log"}
use_stderr = false
enabled_backends = {", ".join(f"{s}:file" for s in STORES)}, web:http
show_multiple_locations = true
enabled_import_methods = [glance-direct, web-download, copy-image, glance-download]
worker_self_reference_url = {self.url}

[database]
connection = sqlite:///{w / "glance.sqlite"}

[glance_store]
default_backend = {STORES[0]}

{stores}
[web]
weight = 0

[os_glance_staging_store]
filesystem_store_datadir = {w / "staging"}

[os_glance_tasks_store]
filesystem_store_datadir = {w / "tasks"}

[import_filtering_opts]
allowed_hosts = 127.0.0.1
allowed_ports = {self.file_server_port}

[paste_deploy]
flavor = keystone
config_file = {paste}

[oslo_concurrency]
lock_path = {w / "locks"}

{self.authtoken_section}
"""
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and leave it (logs, tempest.conf)")
    args = parser.parse_args()
    install_keystone()
    install_tempest()
    work = args.keep or Path(tempfile.mkdtemp(prefix="tempest-glance-"))
    work.mkdir(parents=True, exist_ok=True)
    images = work / "images"
    images.mkdir(exist_ok=True)
    for name, size in (("cirros.img", "2M"), ("cirros.qcow2", "1M")):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(images / name), size], check=True)
    files = FileServer(images).start()
    keystone = KeystoneServer(work / "keystone").start()
    glance: KeystoneGlance | None = None
    try:
        bootstrap_projects(keystone)
        glance = KeystoneGlance(work / "glance", authtoken_conf(keystone), files.port).start()
        register_image_service(keystone, glance.url)
        run_dir = work / "tempest"
        run_dir.mkdir(exist_ok=True)
        conf = run_dir / "tempest.conf"
        conf.write_text(
            tempest_conf(
                auth_url=keystone.url, admin_user=keystone.admin_username, admin_password=keystone.admin_password,
                admin_project=keystone.admin_project, region=keystone.region, file_server_url=files.url,
                log_file=run_dir / "tempest.log", lock_path=run_dir / "locks",
            )
        )  # fmt: skip
        nothing = run_dir / "exclude.txt"
        nothing.write_text("")
        outcomes, _ = run_tempest(run_dir, conf, nothing)
    finally:
        if glance is not None:
            glance.stop()
        keystone.stop()
        files.stop()
    expected = Expected.load()
    for outcome in sorted(outcomes, key=lambda o: o.name):
        mark = " (excluded for Glimpse)" if any(outcome.name.startswith(n) for n in expected.excluded) else ""
        last = outcome.reason.strip().splitlines()[-1][:160] if outcome.reason.strip() else ""
        print(f"{outcome.status:8} {outcome.name}{mark}  {last if outcome.status != 'success' else ''}")
    print(dict(Counter(o.status for o in outcomes)), f"work folder: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
