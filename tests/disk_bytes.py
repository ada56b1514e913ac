"""Random image data that the format check can only take for a plain disk.

Random bytes end in 0x55 0xAA at offset 510 once in 65,536 draws: a master boot record's signature, which
makes them a partitioned disk with a nonsense partition table, refused as unsafe (Glance refuses it too).
Tests that upload random data as raw draw it here so that chance cannot fail them.
"""

from __future__ import annotations

import os

MBR_SIGNATURE = slice(510, 512)


def raw_disk_bytes(size: int) -> bytes:
    data = bytearray(os.urandom(size))
    if data[MBR_SIGNATURE] == b"\x55\xaa":
        data[510] = 0
    return bytes(data)
