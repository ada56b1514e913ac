"""Random bytes that happen to carry a boot sector's signature, and the test data drawn to avoid them."""

from __future__ import annotations

import os

import pytest

from glimpse.errors import BadRequest
from glimpse.formats.inspection import FormatGuard, FormatRules
from tests.disk_bytes import raw_disk_bytes


def _judged(data: bytes) -> str:
    guard = FormatGuard([data[:1000], data[1000:]], "raw", FormatRules())
    assert b"".join(guard) == data
    assert guard.verdict is not None
    return guard.verdict.format


def test_random_bytes_with_a_boot_signature_are_a_disk_with_a_nonsense_partition_table() -> None:
    data = bytearray(os.urandom(4096))
    data[446] = 0x7F  # the first partition's boot flag: neither 0x00 nor 0x80
    data[510:512] = b"\x55\xaa"
    with pytest.raises(BadRequest, match="not safe to use"):
        _judged(bytes(data))


def test_test_data_never_carries_the_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    unlucky = bytearray(os.urandom(4096))
    unlucky[510:512] = b"\x55\xaa"
    monkeypatch.setattr(os, "urandom", lambda size: bytes(unlucky[:size]))
    data = raw_disk_bytes(4096)
    assert data[510:512] != b"\x55\xaa" and data[:510] == unlucky[:510] and data[512:] == unlucky[512:]
    assert _judged(data) == "raw"
