"""The serving process's garbage collector, settled once its app is built."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from glimpse.assembly.lifecycle import GC_YOUNG_THRESHOLD, settle_garbage_collector


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()  # this test process builds many apps: nothing of theirs may stay out of the collector's reach
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    older = gc.get_threshold()[1:]
    settle_garbage_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *older)


@pytest.mark.usefixtures("restored_gc")
def test_what_a_request_leaves_in_a_cycle_is_still_collected() -> None:
    settle_garbage_collector()

    class Node:
        other: object = None

    first, second = Node(), Node()
    first.other, second.other = second, first
    del first, second
    assert gc.collect() >= 2
