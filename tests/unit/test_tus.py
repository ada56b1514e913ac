"""The tus 1.0 protocol's headers (glimpse/tus.py): what a request says, read strictly; what a response says."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import pytest

from glimpse import tus
from glimpse.errors import BadRequest, UnsupportedMediaType

ID = "0b5f4c1e-8f43-4a57-9f7e-3d7c2e9a1b00"


def upload_id_of(url: str) -> str | None:
    return url.rsplit("/", 1)[-1] if "/uploads/" in url else None


def test_every_request_but_options_must_speak_1_0_0() -> None:
    tus.check_version({"tus-resumable": "1.0.0"})
    for headers in ({}, {"tus-resumable": "0.2.2"}, {"tus-resumable": "1.0.0 "}):
        with pytest.raises(tus.PreconditionFailed) as caught:
            tus.check_version(headers)
        assert caught.value.http_status == 412


def test_creation_reads_length_metadata_and_concatenation() -> None:
    meta = f"filename {base64.b64encode(b'disk.raw').decode()},is_confidential"
    created = tus.parse_creation(
        {"tus-resumable": "1.0.0", "upload-length": "42", "upload-metadata": meta}, upload_id_of
    )
    assert created.length == 42
    assert created.concat is None
    assert created.metadata == {"filename": "disk.raw", "is_confidential": ""}
    partial = tus.parse_creation(
        {"tus-resumable": "1.0.0", "upload-length": "1", "upload-concat": "partial"}, upload_id_of
    )
    assert partial.concat == tus.Concat(final=False)
    final = tus.parse_creation(
        {"tus-resumable": "1.0.0", "upload-concat": f"final;http://h/v2/images/i/uploads/{ID} /v2/images/i/uploads/b"},
        upload_id_of,
    )
    assert final.length is None
    assert final.concat == tus.Concat(final=True, parts=(ID, "b"))


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no length
        {"upload-length": "-1"},
        {"upload-length": "1e3"},
        {"upload-length": "١٢"},  # digits, but not ASCII ones
        {"upload-length": "1" * 20},  # past 64 bits
        {"upload-defer-length": "1"},  # not offered
        {"upload-length": "1", "upload-concat": "final;"},
        {"upload-length": "1", "upload-concat": "whatever"},
        {"upload-concat": "final;http://elsewhere/not-an-upload"},
        {"upload-concat": f"final;/x/uploads/{ID} /x/uploads/{ID}"},  # the same part twice
        {"upload-length": "5", "upload-concat": f"final;/x/uploads/{ID}"},  # a final one has no length of its own
        {"upload-length": "1", "upload-metadata": "key not-base64!"},
        {"upload-length": "1", "upload-metadata": "a YQ==,a YQ=="},
        {"upload-length": "1", "upload-metadata": "bad\x01key YQ=="},
    ],
)
def test_bad_creation_is_a_400(headers: dict[str, str]) -> None:
    with pytest.raises(BadRequest):
        tus.parse_creation({"tus-resumable": "1.0.0", **headers}, upload_id_of)


def test_a_chunk_needs_its_media_type_and_offset() -> None:
    ok = {"tus-resumable": "1.0.0", "content-type": "application/offset+octet-stream", "upload-offset": "7"}
    assert tus.parse_chunk(ok) == tus.Chunk(7, None)
    with pytest.raises(UnsupportedMediaType):
        tus.parse_chunk({**ok, "content-type": "application/octet-stream"})
    with pytest.raises(BadRequest):
        tus.parse_chunk({**ok, "upload-offset": "x"})
    with pytest.raises(tus.PreconditionFailed):
        tus.parse_chunk({**ok, "tus-resumable": "2.0.0"})


def test_upload_checksum_is_an_algorithm_and_a_base64_digest_of_the_right_size() -> None:
    digest = hashlib.sha1(b"abc").digest()
    checksum = tus.parse_checksum(f"sha1 {base64.b64encode(digest).decode()}")
    assert checksum == tus.Checksum("sha1", digest)
    assert tus.parse_checksum(None) is None
    for bad in ("crc32 AAAA", "sha1 ***", f"sha256 {base64.b64encode(digest).decode()}", "sha1"):
        with pytest.raises(BadRequest):
            tus.parse_checksum(bad)


def test_a_checksum_mismatch_is_tus_460() -> None:
    assert tus.ChecksumMismatch("x").http_status == 460


def test_discovery_headers() -> None:
    headers = tus.discovery_headers(1024)
    assert headers["Tus-Resumable"] == headers["Tus-Version"] == "1.0.0"
    assert headers["Tus-Extension"] == "creation,checksum,termination,expiration,concatenation"
    assert headers["Tus-Max-Size"] == "1024"
    assert "sha1" in headers["Tus-Checksum-Algorithm"].split(",")
    assert "Tus-Max-Size" not in tus.discovery_headers(None)


def test_state_headers_are_never_cached_and_name_the_parts() -> None:
    state = tus.UploadState("u", 3, 10, datetime(2030, 1, 2, 3, 4, 5), final_of=("a", "b"), metadata={"k": "v"})
    headers = tus.state_headers(state, lambda part: f"http://h/{part}")
    assert headers["Upload-Offset"] == "3"
    assert headers["Upload-Length"] == "10"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Upload-Expires"] == "Wed, 02 Jan 2030 03:04:05 GMT"
    assert headers["Upload-Concat"] == "final;http://h/a http://h/b"
    assert tus.parse_metadata(headers["Upload-Metadata"]) == {"k": "v"}
    assert (
        tus.state_headers(tus.UploadState("u", 0, 1, datetime(2030, 1, 1), partial=True))["Upload-Concat"] == "partial"
    )
