"""HAProxy (Debian's package) in front of several glimpse serve nodes, as an operator would run them."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx

from tests.functional.server import free_port


class HAProxy:
    def __init__(self, workdir: Path, backends: list[str], check_path: str = "/versions") -> None:
        """check_path: what HAProxy asks each node every 0.5 s; a node failing it twice leaves the rotation."""
        binary = shutil.which("haproxy")
        if binary is None:
            raise RuntimeError(
                "haproxy is missing: the scale-out test needs Debian's haproxy (scripts/test installs it)."
            )
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.conf = workdir / "haproxy.cfg"
        servers = "\n".join(
            f"    server n{i} {b.removeprefix('http://')} check inter 500 fall 2 rise 1" for i, b in enumerate(backends)
        )
        self.conf.write_text(
            f"""global
    maxconn 512
defaults
    mode http
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    retries 3
    option redispatch
    retry-on conn-failure empty-response
frontend images
    bind 127.0.0.1:{self.port}
    default_backend glimpse
backend glimpse
    balance roundrobin
    option httpchk GET {check_path}
    http-check expect status 200
{servers}
"""
        )
        self.log = workdir / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HAProxy:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-db", "-f", str(self.conf)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/versions", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"haproxy did not answer:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
