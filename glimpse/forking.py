"""Whether this process may fork: a fork copies every lock another thread may hold at that moment, held forever."""

from __future__ import annotations

import os


def single_threaded() -> bool:
    """No other thread, native ones included, runs in this process (so a fork copies no lock in use)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:  # no /proc: be safe
        return False
