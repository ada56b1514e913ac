"""The tus 1.0 resumable-upload protocol (https://tus.io/protocols/resumable-upload): its headers read and written,
with no web framework, so the API (api/v2/uploads.py) and the dashboard share one reading of them.

Core, plus the extensions creation, checksum, termination, expiration and concatenation. Every request but OPTIONS
must say `Tus-Resumable: 1.0.0` (412 otherwise); a chunk comes as `application/offset+octet-stream` (415 otherwise).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import ClassVar

from glimpse.errors import BadRequest, GlimpseError, UnsupportedMediaType

VERSION = "1.0.0"
EXTENSIONS = ("creation", "checksum", "termination", "expiration", "concatenation")
# sha1 is the one the checksum extension requires of every server; the others are the ones clients offer.
CHECKSUM_ALGORITHMS = ("sha1", "md5", "sha256", "sha512")
CHUNK_MEDIA_TYPE = "application/offset+octet-stream"
# Headers a browser's tus client (tus-js-client) must be allowed to read across origins.
EXPOSED_HEADERS = (
    "Location", "Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm",
    "Upload-Offset", "Upload-Length", "Upload-Expires", "Upload-Metadata", "Upload-Concat",
)  # fmt: skip
_COUNT = re.compile(r"^[0-9]{1,19}$")  # ASCII digits of a 64-bit count (\d would take other scripts' digits)
_METADATA_KEY = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,255}$")
MAX_METADATA_PAIRS = 64
MAX_PARTS = 64  # partial uploads one final upload may join


class PreconditionFailed(GlimpseError):
    """The client speaks another version of tus."""

    http_status = 412


class ChecksumMismatch(GlimpseError):
    """The chunk's bytes do not have the digest Upload-Checksum announced: they are not kept."""

    http_status = 460


class ExpectationFailed(BadRequest):
    """A header the protocol needs is missing or malformed (the chunk is not taken)."""


@dataclass(frozen=True)
class Checksum:
    algorithm: str
    digest: bytes

    SUPPORTED: ClassVar[tuple[str, ...]] = CHECKSUM_ALGORITHMS

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm, usedforsecurity=False)


@dataclass(frozen=True)
class Concat:
    """Upload-Concat: `partial`, or `final` with the partial uploads' ids in order."""

    final: bool
    parts: tuple[str, ...] = ()


@dataclass(frozen=True)
class Creation:
    """What a POST asks for."""

    length: int | None  # None for a final concatenation (the sum of its parts)
    concat: Concat | None
    metadata: dict[str, str]


def check_version(headers: Mapping[str, str]) -> None:
    value = headers.get("tus-resumable")
    if value != VERSION:
        shown = value or "(missing)"
        raise PreconditionFailed(f"Tus-Resumable {shown} is not supported: this server speaks {VERSION}.")


def count(value: str | None, header: str) -> int:
    if value is None or not _COUNT.match(value.strip()):
        raise ExpectationFailed(f"The {header} header must be a count of bytes, not {value!r}.")
    return int(value.strip())


def parse_metadata(value: str | None) -> dict[str, str]:
    """Upload-Metadata: `key base64value, key, ...`; values that are not UTF-8 text are kept as base64."""
    if not value or not value.strip():
        return {}
    pairs: dict[str, str] = {}
    for item in value.split(","):
        key, _, encoded = item.strip().partition(" ")
        if not _METADATA_KEY.match(key) or key in pairs:
            raise BadRequest(f"Upload-Metadata has a bad or repeated key {key[:64]!r}.")
        try:
            raw = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"Upload-Metadata value of {key} is not base64.") from None
        try:
            pairs[key] = raw.decode()
        except UnicodeDecodeError:
            pairs[key] = encoded.strip()
        if len(pairs) > MAX_METADATA_PAIRS:
            raise BadRequest(f"Upload-Metadata has more than {MAX_METADATA_PAIRS} pairs.")
    return pairs


def format_metadata(metadata: Mapping[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items())


def parse_concat(value: str | None, upload_id_of: Callable[[str], str | None]) -> Concat | None:
    """`partial`, or `final;<url> <url> ...` whose URLs (absolute or paths) `upload_id_of` turns into ids."""
    if value is None:
        return None
    value = value.strip()
    if value == "partial":
        return Concat(final=False)
    kind, _, urls = value.partition(";")
    if kind.strip() != "final" or not urls.strip():
        raise BadRequest("Upload-Concat must be 'partial' or 'final;<url> <url> ...'.")
    parts = []
    for url in urls.split():
        upload_id = upload_id_of(url)
        if upload_id is None:
            raise BadRequest(f"Upload-Concat names {url[:200]!r}, which is not an upload of this image.")
        parts.append(upload_id)
    if len(parts) > MAX_PARTS or len(set(parts)) != len(parts):
        raise BadRequest(f"Upload-Concat must name at most {MAX_PARTS} distinct partial uploads.")
    return Concat(final=True, parts=tuple(parts))


def parse_creation(headers: Mapping[str, str], upload_id_of: Callable[[str], str | None]) -> Creation:
    check_version(headers)
    concat = parse_concat(headers.get("upload-concat"), upload_id_of)
    metadata = parse_metadata(headers.get("upload-metadata"))
    if concat is not None and concat.final:
        if "upload-length" in headers:
            raise BadRequest("A final concatenation takes its length from its parts: send no Upload-Length.")
        return Creation(None, concat, metadata)
    if headers.get("upload-defer-length") is not None:
        raise BadRequest("Upload-Defer-Length is not supported: send Upload-Length.")
    return Creation(count(headers.get("upload-length"), "Upload-Length"), concat, metadata)


def parse_checksum(value: str | None) -> Checksum | None:
    """Upload-Checksum: `<algorithm> <base64 digest>`; an unknown algorithm is a 400, as the extension says."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        offered = ", ".join(CHECKSUM_ALGORITHMS)
        raise BadRequest(f"Upload-Checksum algorithm {algorithm[:32]!r} is not supported ({offered}).")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("Upload-Checksum digest is not base64.") from None
    if len(digest) != hashlib.new(algorithm, usedforsecurity=False).digest_size:
        raise BadRequest(f"Upload-Checksum digest has the wrong length for {algorithm}.")
    return Checksum(algorithm, digest)


@dataclass(frozen=True)
class Chunk:
    """What a PATCH says about the bytes it carries."""

    offset: int
    checksum: Checksum | None


def parse_chunk(headers: Mapping[str, str]) -> Chunk:
    check_version(headers)
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if media != CHUNK_MEDIA_TYPE:
        raise UnsupportedMediaType(f"A chunk must be sent as {CHUNK_MEDIA_TYPE}, not {media or '(none)'}.")
    return Chunk(count(headers.get("upload-offset"), "Upload-Offset"), parse_checksum(headers.get("upload-checksum")))


def http_date(when: datetime) -> str:
    """RFC 9110's IMF-fixdate, as Upload-Expires carries it (when: naive UTC or aware)."""
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    return format_datetime(aware.astimezone(UTC), usegmt=True)


def common_headers() -> dict[str, str]:
    return {"Tus-Resumable": VERSION}


def discovery_headers(max_size: int | None) -> dict[str, str]:
    """OPTIONS: what this server supports, and the most the caller may upload (when there is a limit)."""
    headers = {
        **common_headers(),
        "Tus-Version": VERSION,
        "Tus-Extension": ",".join(EXTENSIONS),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
    }
    if max_size is not None:
        headers["Tus-Max-Size"] = str(max_size)
    return headers


@dataclass(frozen=True)
class UploadState:
    """One upload as HEAD, POST and PATCH show it."""

    upload_id: str
    offset: int
    length: int
    expires_at: datetime
    partial: bool = False
    final_of: Sequence[str] = ()
    metadata: Mapping[str, str] | None = None


def state_headers(state: UploadState, location_of: Callable[[str], str] | None = None) -> dict[str, str]:
    """HEAD's headers: offset, length, expiry, concatenation and metadata; never cached."""
    headers = {
        **common_headers(),
        "Upload-Offset": str(state.offset),
        "Upload-Length": str(state.length),
        "Upload-Expires": http_date(state.expires_at),
        "Cache-Control": "no-store",
    }
    if state.partial:
        headers["Upload-Concat"] = "partial"
    elif state.final_of and location_of is not None:
        headers["Upload-Concat"] = "final;" + " ".join(location_of(p) for p in state.final_of)
    if state.metadata:
        headers["Upload-Metadata"] = format_metadata(state.metadata)
    return headers


def progress_headers(state: UploadState) -> dict[str, str]:
    """PATCH's answer: the new offset and the (possibly extended) expiry."""
    return {**common_headers(), "Upload-Offset": str(state.offset), "Upload-Expires": http_date(state.expires_at)}
