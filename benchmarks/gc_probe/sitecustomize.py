"""Garbage-collector pauses of a server under load: every collection longer than 2 ms, per process.

    rm -f /tmp/glimpse-gc-*; PYTHONPATH=$PWD/benchmarks/gc_probe .venv/bin/python benchmarks/request_cost.py --only show
    cat /tmp/glimpse-gc-*      # one line per pause: generation, duration, objects it freed

Python imports `sitecustomize` at start-up from the path, so every process of the run (the benchmark, the server's
supervisor and its workers, which inherit PYTHONPATH; it must be absolute, as the server runs in another folder)
records its own pauses to /tmp/glimpse-gc-<pid>. A pause that frees thousands of objects means requests leave
reference cycles (tests/unit/api/test_request_garbage.py).
"""

import gc
import os
import time

_started = [0.0]


def _timed(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
        return
    took = (time.perf_counter() - _started[0]) * 1000
    if took > 2:
        with open(f"/tmp/glimpse-gc-{os.getpid()}", "a") as out:
            out.write(f"gen{info['generation']} {took:.1f} ms freed {info['collected']}\n")


gc.callbacks.append(_timed)
