"""Which disk format a file is, from its first bytes (oslo.utils' inspector, as the upload check reads them) and
from its name where the content cannot tell (ploop, the Amazon formats, a plain disk called .img)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import PurePath

from oslo_utils.imageutils import format_inspector as fi

# Enough for every format's signature (an ISO's sits at 32 KiB, the deepest), and under the request body limit
# ([oslo_middleware] max_request_body_size, 112 KiB by default) the dashboard's probe is held to.
HEAD_BYTES = 64 * 1024
# The inspector's names of the formats a file's content shows, as disk_format values.
CONTENT_FORMATS = {"qcow2": "qcow2", "vmdk": "vmdk", "vhdx": "vhdx", "vhd": "vhd", "vdi": "vdi", "iso": "iso"}
# Content with no format of its own: a bare disk, or one with a partition table.
PLAIN_CONTENT = frozenset({"raw", "gpt", "mbr"})
EXTENSION_FORMATS = {
    ".qcow2": "qcow2", ".vmdk": "vmdk", ".vhdx": "vhdx", ".vhd": "vhd", ".vdi": "vdi", ".iso": "iso",
    ".raw": "raw", ".img": "raw", ".ploop": "ploop", ".aki": "aki", ".ari": "ari", ".ami": "ami",
}  # fmt: skip
# Glance asks the Amazon formats to be their own container too.
EXTENSION_CONTAINERS = {".ova": "ova", ".aki": "aki", ".ari": "ari", ".ami": "ami"}


def content_format(head: bytes) -> str | None:
    """What the inspector makes of a file's first bytes: a CONTENT_FORMATS key, "raw" (or "gpt") for content
    of no format of its own, None when several formats match."""
    wrapper = fi.InspectWrapper(io.BytesIO(head))
    try:
        while wrapper.read(65536):
            pass
        wrapper.close()  # the end of what is read: inspectors still unsure are no match
        detected = wrapper.format
    except fi.ImageFormatError:
        return None
    return str(detected) if detected is not None else None


@dataclass(frozen=True)
class Guess:
    disk_format: str | None
    container_format: str | None
    source: str  # "content", "extension" or "" (nothing to go by)


def guess_formats(head: bytes, filename: str) -> Guess:
    """The content decides when it shows a format. Content of none is what the name says if the name is of a
    format the content cannot show (raw, ploop, aki, ari, ami), else raw: a file named .qcow2 without qcow2's
    header is not qcow2, and the upload would be refused."""
    suffix = PurePath(filename).suffix.lower()
    container = EXTENSION_CONTAINERS.get(suffix)
    found = content_format(head)
    if found in CONTENT_FORMATS:
        return Guess(CONTENT_FORMATS[found], container, "content")
    by_name = EXTENSION_FORMATS.get(suffix)
    if by_name is not None and by_name not in CONTENT_FORMATS.values():
        return Guess(by_name, container, "extension")
    if found in PLAIN_CONTENT:
        return Guess("raw", container, "content")
    return Guess(None, container, "extension" if container else "")
