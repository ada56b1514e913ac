"""The folder where the workers of one `glimpse serve` keep their metric values (prometheus-client's multiprocess
mode), so a scrape answered by any worker counts them all.

prometheus-client reads PROMETHEUS_MULTIPROC_DIR when it is first imported, so `prepare` runs before anything
imports it (glimpse serve calls it before loading the app; the workers inherit the variable). Each run has its own
folder: values of a previous run, or of another server on the same machine, never mix in. A worker that died
leaves files behind: its counters and histograms stay in the totals (they must never go back), while its "live"
gauges (in progress, connections in use) are removed at the next scrape.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"
PREFIX = "glimpse-metrics-"
_RUN = re.compile(rf"^{PREFIX}(\d+)-")
_WORKER_FILE = re.compile(r"_(\d+)\.db$")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def prepare(base: Path | None = None) -> Path:
    """A fresh folder for this run (named after this process), after removing those of runs that died."""
    root = Path(base or tempfile.gettempdir())
    for old in root.glob(f"{PREFIX}*"):
        match = _RUN.match(old.name)
        if match and old.is_dir() and not alive(int(match.group(1))):
            shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root))
    os.environ[ENV] = str(folder)
    return folder


def remove(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if os.environ.get(ENV) == str(folder):
        del os.environ[ENV]


def current() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


def reap_dead_workers(folder: Path) -> list[int]:
    """Drop the live gauges of workers that are gone; returns their process ids.

    What prometheus-client's mark_process_dead does, tolerating another worker's scrape removing the same files
    at the same moment.
    """
    dead = set()
    for f in folder.glob("gauge_live*_*.db"):
        match = _WORKER_FILE.search(f.name)
        if match and not alive(int(match.group(1))):
            dead.add(int(match.group(1)))
            f.unlink(missing_ok=True)
    return sorted(dead)
