"""A real `glimpse serve` process for functional tests, on a free port with its own config and data."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

GLIMPSE = str(Path(sys.executable).with_name("glimpse"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GlimpseServer:
    def __init__(self, workdir: Path, database_url: str | None = None, extra_conf: str = "") -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = workdir / "data"
        self.conf = workdir / "glance-api.conf"
        database = f"[database]\nconnection = {database_url}\n" if database_url else ""
        self.conf.write_text(f"[DEFAULT]\nbind_port = {self.port}\n{extra_conf}\n{database}")
        self.log = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [GLIMPSE, *args, "--config-file", str(self.conf), "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.workdir,
        )

    def start(self, *serve_args: str) -> GlimpseServer:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [GLIMPSE, "serve", "--config-file", str(self.conf), "--data-dir", str(self.data_dir), *serve_args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"glimpse serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/versions", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"glimpse serve did not answer within 30 s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class GranianServer(GlimpseServer):
    """The same app under Granian (`granian --factory glimpse.app:app_from_environment`), a server that offers the
    ASGI pathsend extension: a whole file-store image leaves without its bytes crossing Python. The database is
    migrated first and the metrics folder prepared, as `glimpse serve` does."""

    def start(self, *serve_args: str, workers: int = 1) -> GranianServer:
        assert self.command("db", "sync").returncode == 0
        metrics = self.workdir / "metrics"
        metrics.mkdir(parents=True, exist_ok=True)
        overrides = {"data_dir": str(self.data_dir)}
        env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(metrics))
        env["GLIMPSE_SERVE_ARGS"] = json.dumps({"config_files": [str(self.conf)], "config_dir": None,
                                                "overrides": overrides})  # fmt: skip
        granian = str(Path(sys.executable).with_name("granian"))
        command = [granian, "--interface", "asgi", "--factory", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(workers), "--no-ws", *serve_args, "glimpse.app:app_from_environment"]  # fmt: skip
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, env=env,
                                         start_new_session=True)  # fmt: skip
        self._wait_ready()
        return self
