"""Waiting for a real server to get somewhere, with a deadline and a message saying what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(check: Callable[[], bool], what: str, timeout: float = 30, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(every)


def eventually(check: Callable[[], T], timeout: float = 30, what: str = "") -> T:
    """check()'s first true value; AssertionError naming `what` (or the check) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or check}")
