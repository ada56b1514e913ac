"""The per-run folder of the workers' metric files: stale runs swept, dead workers' live gauges dropped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from glimpse.metrics import multiprocess


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_prepare_sweeps_dead_runs_and_keeps_live_ones(tmp_path: Path, monkeypatch: object) -> None:
    stale = tmp_path / f"glimpse-metrics-{dead_pid()}-abc"
    live = tmp_path / f"glimpse-metrics-{os.getppid()}-def"
    for d in (stale, live):
        d.mkdir()
    before = os.environ.get(multiprocess.ENV)
    folder = multiprocess.prepare(tmp_path)
    try:
        assert not stale.exists() and live.exists() and folder.is_dir()
        assert os.environ[multiprocess.ENV] == str(folder)
    finally:
        multiprocess.remove(folder)
        if before is not None:
            os.environ[multiprocess.ENV] = before
    assert not folder.exists()


def test_dead_workers_lose_their_live_gauges_not_their_counters(tmp_path: Path) -> None:
    gone, here = dead_pid(), os.getpid()
    files = [f"gauge_livesum_{gone}.db", f"counter_{gone}.db", f"histogram_{gone}.db", f"gauge_livesum_{here}.db",
             f"gauge_max_{gone}.db"]  # fmt: skip
    for name in files:
        (tmp_path / name).write_bytes(b"")
    assert multiprocess.reap_dead_workers(tmp_path) == [gone]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(files[1:])
