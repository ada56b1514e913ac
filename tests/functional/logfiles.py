"""Helpers of the logging and signal tests: images with data, reading what a server logged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.functional.server import GlimpseServer


def image_with_data(server: GlimpseServer, data: bytes, headers: dict[str, str] | None = None) -> str:
    body = {"name": "logged", "disk_format": "raw", "container_format": "bare"}
    created = httpx.post(f"{server.url}/v2/images", json=body, headers=headers, timeout=30)
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    if data:
        put = httpx.put(
            f"{server.url}/v2/images/{image_id}/file",
            content=data,
            headers={**(headers or {}), "content-type": "application/octet-stream"},
            timeout=120,
        )
        assert put.status_code == 204, put.text
    return image_id


def json_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(path: Path, text: str, timeout: float = 15) -> str:
    """The file's content once it contains `text`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not in {path} after {timeout} s:\n{path.read_text() if path.exists() else ''}")


def children(pid: int) -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return {int(p) for p in out.split()}


def send(server: GlimpseServer, sig: signal.Signals) -> None:
    assert server.proc is not None
    os.kill(server.proc.pid, sig)
