"""glimpse.domain.service.resolve_range: HTTP byte ranges -> (start, length)."""

from __future__ import annotations

import pytest

from glimpse.domain.service import resolve_range
from glimpse.errors import RangeNotSatisfiable

SIZE = 100


@pytest.mark.parametrize(
    ("byte_range", "expected"),
    [
        (None, (0, SIZE)),
        ((0, None), (0, SIZE)),
        ((0, 0), (0, 1)),
        ((0, 9), (0, 10)),
        ((10, 19), (10, 10)),
        ((99, 99), (99, 1)),
        ((99, None), (99, 1)),
        ((50, None), (50, 50)),
        ((90, 1000), (90, 10)),  # the end is clamped to the last byte
        ((0, 99), (0, SIZE)),
        ((None, 1), (99, 1)),  # bytes=-1: the last byte
        ((None, 10), (90, 10)),
        ((None, SIZE), (0, SIZE)),
        ((None, 1000), (0, SIZE)),  # a suffix longer than the data is all of it
    ],
)
def test_satisfiable(byte_range: tuple[int | None, int | None] | None, expected: tuple[int, int]) -> None:
    assert resolve_range(byte_range, SIZE) == expected


@pytest.mark.parametrize("byte_range", [(100, None), (100, 200), (150, 160), (10, 5), (None, 0)])
def test_not_satisfiable(byte_range: tuple[int | None, int | None]) -> None:
    with pytest.raises(RangeNotSatisfiable) as err:
        resolve_range(byte_range, SIZE)
    assert err.value.size == SIZE


def test_empty_data_whole_body() -> None:
    assert resolve_range(None, 0) == (0, 0)


def test_empty_data_has_no_satisfiable_start() -> None:
    with pytest.raises(RangeNotSatisfiable) as err:
        resolve_range((0, None), 0)
    assert err.value.size == 0


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_ranges_stay_inside_the_data(size: int) -> None:
    for start in range(0, size, max(1, size // 5)):
        for end in (start, start + 3, size - 1, size + 10):
            if end < start:
                continue
            got_start, length = resolve_range((start, end), size)
            assert got_start == start
            assert 1 <= length
            assert got_start + length <= size
            assert got_start + length - 1 == min(end, size - 1)
