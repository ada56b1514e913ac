"""Image data counted through the DataMeter port as it flows, and the metrics behind the port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from glimpse.domain.data_meter import counted
from glimpse.metrics.instruments import Metrics


class Meter:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def received(self, operation: str, size: int) -> None:
        self.seen.append((operation, size))


def test_each_chunk_counts_as_it_passes() -> None:
    meter = Meter()
    chunks = counted([b"abc", b"", b"de"], meter, "web-download")
    assert meter.seen == []  # nothing read yet
    assert b"".join(chunks) == b"abcde"
    assert meter.seen == [("web-download", 3), ("web-download", 2)]


def test_a_fetch_cut_off_counts_what_came_and_closes_the_source() -> None:
    closed = []

    def source() -> Iterator[bytes]:
        try:
            yield b"x" * 10
            yield b"y" * 10
            raise OSError("connection reset")
        finally:
            closed.append(True)

    meter = Meter()
    reading = iter(counted(source(), meter, "glance-download"))
    assert next(reading) == b"x" * 10
    with pytest.raises(OSError):
        list(reading)
    assert sum(size for _, size in meter.seen) == 20 and closed == [True]
    early = iter(counted(source(), meter, "copy-image"))
    next(early)
    early.close()  # the consumer gave up (a size cap, a lost claim): the source is let go at once
    assert closed == [True, True]


def test_without_a_meter_the_chunks_pass_untouched() -> None:
    chunks = [b"a"]
    assert counted(chunks, None, "dashboard") is chunks


def test_the_metrics_are_a_data_meter() -> None:
    metrics = Metrics()
    assert b"".join(counted([b"12345", b"678"], metrics, "copy-image")) == b"12345678"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
    }
    assert samples[("glimpse_image_upload_bytes_total", (("operation", "copy-image"),))] == 8
