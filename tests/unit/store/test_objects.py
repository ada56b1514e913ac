"""glimpse.store.objects and glimpse.store.partials: what the drivers share."""

from __future__ import annotations

import fnmatch

import pytest

from glimpse.errors import BadRequest, StoreError
from glimpse.store.base import HashingMeter
from glimpse.store.objects import byte_range, fixed_blocks, metered, object_location
from glimpse.store.partials import (
    is_partial,
    node_segments_prefix,
    node_tag,
    partial_name,
    partial_pattern,
    segment_pattern,
    segment_prefix,
)

IMAGE = "0b1e7b3c-6d1f-4a53-9f3c-2a7b3e1c9d10"


def test_fixed_blocks_cuts_exact_blocks_and_checks_before_the_last() -> None:
    seen: list[str] = []

    def check() -> None:
        seen.append("checked")

    blocks = []
    for block in fixed_blocks([b"abc", b"defgh", b"", b"ij"], 4, check):
        blocks.append(block)
        seen.append(block.decode())
    assert blocks == [b"abcd", b"efgh", b"ij"]
    assert seen == ["abcd", "efgh", "checked", "ij"]


def test_fixed_blocks_stops_before_the_last_block_when_the_check_fails() -> None:
    meter = HashingMeter(100, "sha512")

    def check() -> None:
        meter.check_expected(9)

    got: list[bytes] = []
    with pytest.raises(BadRequest):
        for block in fixed_blocks(metered([b"12345", b"678"], meter), 4, check):
            got.append(block)
    assert got == [b"1234", b"5678"] and meter.size == 8


@pytest.mark.parametrize(
    ("offset", "length", "expected"),
    [(0, None, None), (5, None, "bytes=5-"), (0, 10, "bytes=0-9"), (3, 1, "bytes=3-3")],
)
def test_byte_range(offset: int, length: int | None, expected: str | None) -> None:
    assert byte_range(offset, length) == expected


def test_object_locations_of_s3_and_swift() -> None:
    s3 = ("s3", "s3+http")
    assert object_location("s3+http://ak:sk@host:9000/bucket/a/b", s3, "an s3", path_in_host=False) == (
        "bucket",
        "a/b",
    )
    swift = ("swift+http",)
    url = "swift+http://u:k@host:8080/auth/v1.0/glance/" + IMAGE
    assert object_location(url, swift, "a swift", path_in_host=True) == ("glance", IMAGE)
    with pytest.raises(StoreError, match="is not an s3 location"):
        object_location("swift+http://host/c/o", s3, "an s3", path_in_host=False)
    with pytest.raises(StoreError, match="does not name a bucket"):
        object_location("s3://host/bucket", s3, "an s3", path_in_host=False)


def test_partial_names_belong_to_their_node_and_image() -> None:
    tag, other = node_tag("node-1"), node_tag("node-2")
    assert len(tag) == 16 and "." not in tag and "-" not in tag and tag != other
    name = partial_name(IMAGE, tag)
    assert name.startswith(f"{IMAGE}.{tag}.") and name.endswith(".partial")
    assert partial_name(IMAGE, tag) != name
    assert is_partial(name, tag) and is_partial(name, tag, IMAGE)
    assert not is_partial(name, other) and not is_partial(name, tag, "another-image")
    assert not is_partial(IMAGE, tag)
    assert fnmatch.fnmatchcase(name, partial_pattern(tag))


def test_segment_names_belong_to_their_node() -> None:
    tag = node_tag("node-1")
    prefix = segment_prefix(IMAGE, tag)
    assert prefix.startswith(node_segments_prefix(IMAGE, tag))
    match = segment_pattern(tag).match(f"{prefix}00001")
    assert match is not None and match["image"] == IMAGE
    assert segment_pattern(node_tag("node-2")).match(f"{prefix}00001") is None
