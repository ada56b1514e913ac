"""RFC 9530 digest fields: parsing (RFC 8941 dictionaries), formatting and verification."""

from __future__ import annotations

import base64
import hashlib

import pytest

from glimpse.domain import digests
from glimpse.domain.digests import DigestCheck, DigestMismatch, MalformedDigest

DATA = b"the bytes the user had" * 100
SHA256 = hashlib.sha256(DATA).digest()
SHA512 = hashlib.sha512(DATA).digest()


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def test_parses_sha256_and_sha512_members() -> None:
    found = digests.parse("Repr-Digest", f"sha-256=:{b64(SHA256)}:, sha-512=:{b64(SHA512)}:")
    assert [(d.algorithm, d.value) for d in found] == [("sha-256", SHA256), ("sha-512", SHA512)]
    assert found[1].hexdigest == hashlib.sha512(DATA).hexdigest()


def test_unknown_and_deprecated_algorithms_are_ignored() -> None:
    text = f'md5=:{b64(hashlib.md5(DATA).digest())}:, x-custom="anything";p=1, crc32c=:AAAAAA==:, adler=?1'
    assert digests.parse("Content-Digest", text) == []


def test_parameters_and_odd_whitespace_are_accepted() -> None:
    found = digests.parse("Repr-Digest", f"  sha-512=:{b64(SHA512)}:;p=?1 ,\tunixsum=12 ")
    assert [d.algorithm for d in found] == ["sha-512"]


def test_missing_base64_padding_is_accepted() -> None:
    unpadded = b64(SHA256).rstrip("=")
    assert digests.parse("Repr-Digest", f"sha-256=:{unpadded}:")[0].value == SHA256


def test_a_repeated_key_keeps_the_last_value() -> None:
    other = hashlib.sha256(b"x").digest()
    found = digests.parse("Repr-Digest", f"sha-256=:{b64(other)}:, sha-256=:{b64(SHA256)}:")
    assert [d.value for d in found] == [SHA256]


@pytest.mark.parametrize(
    "text",
    [
        "sha-512",  # a bare key is Boolean true, not a byte sequence
        "sha-512=abc",  # a token
        'sha-512="abc"',
        "sha-512=12",
        "sha-512=:AAAA",  # unterminated
        "sha-512=:!!!!:",  # not base64
        "SHA-512=:AAAA:",  # keys are lowercase
        "sha-512=:AAAA:,",  # trailing comma
        "sha-512=:AAAA: sha-256=:AAAA:",  # no comma
        "md5=:not base64:",  # an ignored algorithm still has to parse
        'x="unterminated',
        "x=(1 2",
        "x=1234567890123456",  # integers have at most 15 digits
        "=:AAAA:",
        "sha-256=:" + b64(SHA512) + ":",  # sha-256 must be 32 bytes
        "sha-512=:" + b64(SHA256) + ":",  # sha-512 must be 64 bytes
    ],
)
def test_malformed_fields_are_refused(text: str) -> None:
    with pytest.raises(MalformedDigest) as caught:
        digests.parse("Repr-Digest", text)
    assert "Repr-Digest" in caught.value.message
    assert caught.value.http_status == 400


def test_inner_lists_and_other_item_types_parse_for_unknown_keys() -> None:
    assert digests.parse_dictionary('a=(1 "two" three);q=1, b=?0, c=-1.5, d=*tok/x:y') == {
        "a": [1, "two", "three"],
        "b": False,
        "c": -1.5,
        "d": "*tok/x:y",
    }


def test_fields_combine_their_lines_and_ignore_other_headers() -> None:
    lines = [
        ("content-digest", f"sha-256=:{b64(SHA256)}:"),
        ("Content-Type", "application/octet-stream"),
        ("Repr-Digest", "md5=:AAAAAAAAAAAAAAAAAAAAAA==:"),
        ("repr-digest", f"sha-512=:{b64(SHA512)}:"),
    ]
    found = digests.parse_fields(lines)
    assert {(d.field, d.algorithm) for d in found} == {("Content-Digest", "sha-256"), ("Repr-Digest", "sha-512")}
    assert digests.declared_hexdigest(found, "sha-512") == SHA512.hex()
    assert digests.declared_hexdigest(found[:1], "sha-512") is None


def test_format_round_trips() -> None:
    text = digests.format_digest("sha-512", SHA512)
    assert text == f"sha-512=:{b64(SHA512)}:"
    assert digests.parse("Repr-Digest", text)[0].value == SHA512


def test_repr_digest_from_glance_multihash() -> None:
    assert digests.repr_digest_for("sha512", SHA512.hex()) == f"sha-512=:{b64(SHA512)}:"
    assert digests.repr_digest_for("md5", hashlib.md5(DATA).hexdigest()) is None
    assert digests.repr_digest_for("sha512", None) is None
    assert digests.repr_digest_for("sha512", "zz") is None


def test_check_passes_matching_data_in_chunks() -> None:
    check = DigestCheck(digests.parse("Content-Digest", f"sha-256=:{b64(SHA256)}:, sha-512=:{b64(SHA512)}:"))
    assert b"".join(check.checked(DATA[i : i + 7] for i in range(0, len(DATA), 7))) == DATA
    check.verify()


def test_check_names_the_digest_that_does_not_match() -> None:
    check = DigestCheck(digests.parse("Repr-Digest", f"sha-256=:{b64(SHA256)}:"))
    check.update(DATA + b"!")
    with pytest.raises(DigestMismatch) as caught:
        check.verify()
    assert "Repr-Digest" in caught.value.message and "sha-256" in caught.value.message
    assert caught.value.http_status == 400


def test_check_reuses_a_hash_computed_elsewhere() -> None:
    check = DigestCheck(digests.parse("Repr-Digest", f"sha-512=:{b64(SHA512)}:"), skip=frozenset({"sha-512"}))
    check.update(b"not hashed for sha-512")
    check.verify({"sha-512": SHA512.hex()})
    with pytest.raises(DigestMismatch):
        check.verify({"sha-512": hashlib.sha512(b"other").hexdigest()})


def test_an_empty_check_verifies_nothing() -> None:
    check = DigestCheck(digests.parse("Repr-Digest", "md5=:AAAAAAAAAAAAAAAAAAAAAA==:"))
    assert not check
    check.verify()
