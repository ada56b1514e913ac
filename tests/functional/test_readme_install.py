"""The README's first command, exactly as printed, in a copy of the repository: it installs the locked default
dependencies only and serves the embedded default on 127.0.0.1:9292."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

from tests.disk_bytes import raw_disk_bytes

ROOT = Path(__file__).resolve().parents[2]
PORT = 9292  # the README's default


def readme_first_command() -> str:
    blocks = re.findall(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    return blocks[0].strip()


def tracked_copy(dest: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, target)
    return dest


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_the_first_command_installs_the_lock_and_serves(tmp_path: Path) -> None:
    command = readme_first_command()
    assert "requirements/glimpse.lock" in command and command.endswith("glimpse serve")
    assert port_free(PORT), f"127.0.0.1:{PORT} is taken: the README's command serves there"
    repo = tracked_copy(tmp_path / "glimpse")
    log = tmp_path / "first-command.log"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            ["bash", "-c", command], cwd=repo, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None, f"the first command exited with {proc.returncode}:\n{log.read_text()[-4000:]}"
            try:
                if httpx.get(f"http://127.0.0.1:{PORT}/", timeout=2).status_code == 300:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"nothing served within 300 s:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=30) as client:
            body = {"name": "readme", "disk_format": "raw", "container_format": "bare"}
            image = client.post("/v2/images", json=body).json()["id"]
            data = raw_disk_bytes(256 * 1024)
            put = client.put(
                f"/v2/images/{image}/file", content=data, headers={"Content-Type": "application/octet-stream"}
            )
            assert put.status_code == 204, put.text
            assert client.get(f"/v2/images/{image}/file").content == data
        venv_python = repo / ".venv" / "bin" / "python"
        # Only the default dependencies were installed: no backend's library came along.
        for optional in ("boto3", "swiftclient", "keystoneauth1", "redis", "pymysql", "psycopg"):
            found = subprocess.run(
                [str(venv_python), "-c", f"import importlib.util; print(importlib.util.find_spec({optional!r}))"],
                capture_output=True,
                text=True,
            )
            assert found.stdout.strip() == "None", f"{optional} was installed by the default command"
        assert (repo / "glimpse-data" / "glimpse.db").exists()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
