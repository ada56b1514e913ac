"""`glimpse serve --workers N`: the workers are forked from the supervisor, which has imported the code (so they
share it); each opens its own database engine after the fork, and a worker that dies is replaced the same way."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from tests.disk_bytes import raw_disk_bytes
from tests.functional.logfiles import children, image_with_data
from tests.functional.server import GlimpseServer


def _command_line(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def _shared_mib(pid: int) -> float:
    fields = dict(line.split()[:2] for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return (int(fields["Shared_Clean:"]) + int(fields["Shared_Dirty:"])) / 1024


def _replacement(supervisor: int, gone: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = children(supervisor)
        if len(workers) == 2 and gone not in workers:
            return max(workers)
        time.sleep(0.2)
    raise AssertionError(f"worker {gone} was not replaced: {children(supervisor)}")


def test_workers_are_forked_share_the_code_and_a_killed_one_is_replaced(tmp_path: Path) -> None:
    server = GlimpseServer(tmp_path, extra_conf="workers = 2").start()
    try:
        assert server.proc is not None
        supervisor = server.proc.pid
        workers = children(supervisor)
        assert len(workers) == 2
        for pid in workers:
            # A spawned worker would run `python -c 'from multiprocessing.spawn import ...'` and share no code.
            assert _command_line(pid) == _command_line(supervisor)
            assert _shared_mib(pid) > 40, _shared_mib(pid)  # spawned: about 24 MiB (libraries), forked: 55
        data = raw_disk_bytes(3 * 1024 * 1024)
        image_id = image_with_data(server, data)

        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        replacement = _replacement(supervisor, killed)
        assert _command_line(replacement) == _command_line(supervisor)
        for _ in range(8):  # a new connection each time: both workers answer, each from its own engine
            got = httpx.get(f"{server.url}/v2/images/{image_id}/file", headers={"Connection": "close"}, timeout=30)
            assert got.status_code == 200 and got.content == data
        created = httpx.post(f"{server.url}/v2/images", json={"name": "after"}, timeout=30)
        assert created.status_code == 201, created.text
    finally:
        server.stop()
