"""A real vSphere API endpoint on loopback for the vmware store tests: vcsim, VMware's vCenter simulator,
built by scripts/install-vcsim from Debian's govmomi source into .cache/vcsim/vcsim.

It serves the SOAP API on /sdk and the datastores' HTTP file interface on /folder, over TLS with a
certificate it makes at start-up (written to `ca_file`). Its inventory: datacenters DC0.. each with
datastores LocalDS_0.., every datastore a folder under the server's own temporary folder, which the tests
read behind the store's back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.contract.servers import REPO, free_port

VCSIM = Path(os.environ.get("GLIMPSE_VCSIM", REPO / ".cache" / "vcsim" / "vcsim"))
USER = "glimpse"
PASSWORD = "vcsim-secret"


class VcsimServer:
    def __init__(self, workdir: Path, datacenters: int = 1, datastores: int = 2) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.ca_file = workdir / "vcsim-ca.pem"
        self.tmp = workdir / "tmp"
        self.log = workdir / "vcsim.log"
        self.user = USER
        self.password = PASSWORD
        self.datacenters = datacenters
        self.datastores = datastores
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> VcsimServer:
        if not VCSIM.exists():
            raise RuntimeError(f"{VCSIM} is missing: build it with `bash scripts/install-vcsim` (scripts/test does).")
        self.tmp.mkdir(parents=True, exist_ok=True)
        args = [
            str(VCSIM),
            *("-l", self.host, "-username", self.user, "-password", self.password, "-cert", str(self.ca_file)),
            *("-dc", str(self.datacenters), "-ds", str(self.datastores)),
        ]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(self.tmp)},
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vcsim exited with {self.proc.returncode}:\n{self.log.read_text()}")
            if "ready " in self.log.read_text():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"vcsim did not start within 30 s:\n{self.log.read_text()}")

    def datastore_dir(self, datacenter: str = "DC0", datastore: str = "LocalDS_0") -> Path:
        """The folder on this machine holding a datastore's files."""
        found = list(self.tmp.glob(f"govcsim-{datacenter}-{datastore}-*"))
        assert len(found) == 1, found
        return found[0]

    def files(self, folder: str, datacenter: str = "DC0", datastore: str = "LocalDS_0") -> list[str]:
        """The names in a folder of a datastore, read from the disk (none when the folder does not exist)."""
        path = self.datastore_dir(datacenter, datastore) / folder.strip("/")
        return sorted(p.name for p in path.iterdir()) if path.is_dir() else []

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # vcsim removes its datastore folders on SIGTERM
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
