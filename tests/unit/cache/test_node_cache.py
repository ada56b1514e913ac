"""The node-local image cache on a real folder and SQLite file: only verified copies are served, one writer per
image across processes, a writer killed with -9 leaves nothing served, LRU pruning, cleaning, the queue."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from glimpse.cache.node_cache import NodeCache
from glimpse.domain.entities import CacheExpectation

DATA = os.urandom(300_000)


def expect(data: bytes = DATA) -> CacheExpectation:
    return CacheExpectation(len(data), hashlib.md5(data).hexdigest(), "sha512", hashlib.sha512(data).hexdigest())


def new_id() -> str:
    return str(uuid.uuid4())


def fill(cache: NodeCache, image_id: str, data: bytes = DATA, expected: CacheExpectation | None = None) -> bool:
    writer = cache.writer(image_id, expected or expect(data))
    assert writer is not None
    for start in range(0, len(data), 65536):
        writer.write(data[start : start + 65536])
    return writer.finish()


def read_all(cache: NodeCache, image_id: str, expected: CacheExpectation | None = None) -> bytes | None:
    chunks = cache.read(image_id, expected or expect(), 0, len(DATA))
    return None if chunks is None else b"".join(chunks)


@pytest.fixture
def cache(tmp_path: Path) -> NodeCache:
    return NodeCache(tmp_path / "cache", "cache.db", max_size=10 * len(DATA), stall_time=3600)


def test_a_verified_copy_is_served_whole_and_by_range_and_counted(cache: NodeCache) -> None:
    image_id = new_id()
    assert read_all(cache, image_id) is None
    cache.count_miss()
    assert fill(cache, image_id)
    assert read_all(cache, image_id) == DATA
    chunks = cache.read(image_id, expect(), 1000, 5000)
    assert chunks is not None and b"".join(chunks) == DATA[1000:6000]
    assert cache.counters() == {"hits": 2, "misses": 1}
    [entry] = cache.cached_images()
    assert (entry.image_id, entry.size, entry.hits) == (image_id, len(DATA), 2)
    assert entry.last_accessed >= entry.last_modified > 0


@pytest.mark.parametrize(
    "wrong",
    [
        CacheExpectation(len(DATA), "0" * 32, None, None),
        CacheExpectation(len(DATA), None, "sha512", "0" * 128),
        CacheExpectation(len(DATA) + 1, hashlib.md5(DATA).hexdigest(), None, None),
    ],
    ids=["md5", "multihash", "size"],
)
def test_data_that_does_not_match_the_image_is_set_aside(cache: NodeCache, wrong: CacheExpectation) -> None:
    image_id = new_id()
    assert not fill(cache, image_id, expected=wrong)
    assert cache.read(image_id, wrong, 0, 10) is None
    assert (cache.invalid / image_id).exists() and not (cache.directory / image_id).exists()
    cache.clean()
    assert not (cache.invalid / image_id).exists()


def test_more_bytes_than_the_size_stop_the_copy(cache: NodeCache) -> None:
    writer = cache.writer(new_id(), expect(DATA[:10]))
    assert writer is not None
    with pytest.raises(OSError, match="more bytes"):
        writer.write(DATA[:11])
    writer.abort()
    assert list(cache.incomplete.iterdir()) == []


def test_an_image_without_checksums_is_never_cached(cache: NodeCache) -> None:
    assert cache.writer(new_id(), CacheExpectation(10, None, None, None)) is None


@pytest.mark.parametrize("damage", ["rewrite", "truncate", "swap"])
def test_a_damaged_copy_is_never_served(cache: NodeCache, damage: str) -> None:
    image_id = new_id()
    assert fill(cache, image_id)
    path = cache.directory / image_id
    if damage == "rewrite":  # same size, one byte changed
        with open(path, "r+b") as f:
            f.seek(100)
            f.write(bytes([DATA[100] ^ 0xFF]))
    elif damage == "truncate":
        os.truncate(path, len(DATA) // 2)
    else:  # another file put in its place
        other = cache.directory / "other"
        other.write_bytes(DATA)
        os.replace(other, path)
    assert read_all(cache, image_id) is None
    assert not path.exists() and not cache.is_cached(image_id)
    assert fill(cache, image_id)  # the next download caches it anew
    assert read_all(cache, image_id) == DATA


def test_a_copy_the_image_no_longer_matches_is_not_served(cache: NodeCache) -> None:
    image_id = new_id()
    assert fill(cache, image_id)
    other = os.urandom(len(DATA))
    assert cache.read(image_id, expect(other), 0, 10) is None


def test_files_no_record_vouches_for_are_not_served_and_cleaned(cache: NodeCache) -> None:
    image_id = new_id()
    (cache.directory / image_id).write_bytes(DATA)  # e.g. published, then a crash before its record
    (cache.incomplete / new_id()).write_bytes(DATA[:10])
    assert read_all(cache, image_id) is None
    cache.clean()
    assert not (cache.directory / image_id).exists()
    assert len(list(cache.incomplete.iterdir())) == 1  # not stalled yet


def test_stalled_partial_copies_are_cleaned(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path, "cache.db", max_size=10**9, stall_time=60)
    partial = cache.incomplete / new_id()
    partial.write_bytes(b"partial")
    os.utime(partial, (time.time() - 120, time.time() - 120))
    cache.clean()
    assert not partial.exists()


def test_one_writer_per_image_in_the_process(cache: NodeCache) -> None:
    image_id = new_id()
    first = cache.writer(image_id, expect())
    assert first is not None
    assert cache.writer(image_id, expect()) is None  # the second download streams without caching
    first.abort()
    assert fill(cache, image_id)
    assert cache.writer(image_id, expect()) is None  # cached already


def _fill_in_child(directory: str, image_id: str, data: bytes, results: multiprocessing.Queue[str]) -> None:
    cache = NodeCache(Path(directory), "cache.db", max_size=10**9, stall_time=3600)
    writer = cache.writer(image_id, expect(data))
    if writer is None:
        results.put("skipped")
        return
    for start in range(0, len(data), 4096):
        writer.write(data[start : start + 4096])
        time.sleep(0.001)
    results.put("published" if writer.finish() else "failed")


def test_processes_racing_to_fill_one_image(cache: NodeCache) -> None:
    image_id = new_id()
    results: multiprocessing.Queue[str] = multiprocessing.Queue()
    procs = [
        multiprocessing.get_context("fork").Process(
            target=_fill_in_child, args=(str(cache.directory), image_id, DATA, results)
        )
        for _ in range(4)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    assert "published" in outcomes and "failed" not in outcomes
    assert read_all(cache, image_id) == DATA
    assert list(cache.incomplete.iterdir()) == [] or all(p.stat().st_size == 0 for p in cache.incomplete.iterdir())


_SLOW_WRITER = """
import sys, time
from pathlib import Path
from glimpse.cache.node_cache import NodeCache
from glimpse.domain.entities import CacheExpectation
cache = NodeCache(Path(sys.argv[1]), "cache.db", 10**9, 3600)
writer = cache.writer(sys.argv[2], CacheExpectation(10**6, "0" * 32, None, None))
writer.write(b"x" * 1000)
print("writing", flush=True)
time.sleep(60)
"""


def test_a_writer_killed_half_way_leaves_nothing_served_and_no_lock(cache: NodeCache) -> None:
    image_id = new_id()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(cache.directory), image_id], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    assert cache.writer(image_id, expect()) is None  # locked by the live writer
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert read_all(cache, image_id) is None  # the partial copy is never served
    assert fill(cache, image_id)  # the lock died with its process: the next writer reuses the file
    assert read_all(cache, image_id) == DATA


def test_prune_removes_the_least_recently_used_first(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path, "cache.db", max_size=10**9, stall_time=3600)
    ids = [new_id() for _ in range(4)]
    for image_id in ids:
        assert fill(cache, image_id)
        time.sleep(0.01)
    assert read_all(cache, ids[0]) == DATA  # the oldest copy is the most recently read
    cache.max_size = 2 * len(DATA)
    assert cache.prune() == (2, 2 * len(DATA))
    assert {e.image_id for e in cache.cached_images()} == {ids[0], ids[3]}
    assert cache.prune() == (0, 0)


def test_a_new_copy_past_the_maximum_prunes_at_once(tmp_path: Path) -> None:
    cache = NodeCache(tmp_path, "cache.db", max_size=len(DATA) + 1, stall_time=3600)
    first, second = new_id(), new_id()
    assert fill(cache, first)
    assert fill(cache, second)
    assert [e.image_id for e in cache.cached_images()] == [second]


def test_a_copy_removed_while_read_is_read_to_the_end(cache: NodeCache) -> None:
    image_id = new_id()
    assert fill(cache, image_id)
    chunks = cache.read(image_id, expect(), 0, len(DATA))
    assert chunks is not None
    first = next(chunks)
    assert cache.delete_cached(image_id)
    assert first + b"".join(chunks) == DATA
    assert read_all(cache, image_id) is None


def test_the_queue_in_order_and_without_doubles(cache: NodeCache) -> None:
    a, b = new_id(), new_id()
    assert cache.queue(a)
    time.sleep(0.01)
    assert cache.queue(b)
    assert not cache.queue(a)
    assert cache.queued_images() == [a, b]
    assert fill(cache, a)  # a copy published leaves the queue
    assert cache.queued_images() == [b]
    assert not cache.queue(a)  # cached already
    assert cache.delete_all_queued() == 1 and cache.queued_images() == []
    assert cache.delete_all_cached() == 1 and cache.cached_images() == []


@pytest.mark.parametrize("image_id", ["../escape", "cache.db", "incomplete", "", "a/b", ".lock"])
def test_ids_that_are_not_image_ids_touch_no_file(cache: NodeCache, image_id: str) -> None:
    assert not cache.queue(image_id)
    assert cache.writer(image_id, expect()) is None
    assert not cache.delete_cached(image_id)
    assert not cache.delete_queued(image_id)
    assert cache.read(image_id, expect(), 0, 1) is None
    assert (cache.directory / "cache.db").exists()
