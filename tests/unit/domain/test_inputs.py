"""The input checks every stored string, number and URL passes."""

from __future__ import annotations

import pytest

from glimpse.domain.inputs import (
    INT32_MAX,
    MAX_JSON_DEPTH,
    check_document,
    check_hash_value,
    check_int,
    check_properties,
    check_text,
    check_url,
    check_uuid,
    parse_count,
)
from glimpse.errors import BadRequest


@pytest.mark.parametrize("text", ["a\x00b", "\ud800", "x\udfffy", "\x00"])
def test_nul_and_lone_surrogates_are_refused(text: str) -> None:
    with pytest.raises(BadRequest):
        check_text(text, "name")


@pytest.mark.parametrize("text", ["", "plain", "ünïcødé", "\U0001f600", "tab\tand\nnewline"])
def test_other_text_is_kept(text: str) -> None:
    assert check_text(text, "name") == text


def test_documents_are_checked_everywhere_keys_included() -> None:
    check_document({"a": [1, {"b": "c"}], "d": None})
    for bad in ({"a\x00": 1}, {"a": ["\ud800"]}, [[{"x": {"y": "\x00"}}]]):
        with pytest.raises(BadRequest):
            check_document(bad)


def test_depth_is_bounded() -> None:
    doc: object = "leaf"
    for _ in range(MAX_JSON_DEPTH):
        doc = [doc]
    check_document(doc)
    with pytest.raises(BadRequest, match="nested"):
        check_document([doc])


@pytest.mark.parametrize("text", ["²", "\u0663", "1\u0663", "-1", "+1", " 1", "1.0", "", "9" * 30, "0x10"])
def test_counts_are_ascii_digits(text: str) -> None:
    with pytest.raises(BadRequest):
        parse_count(text, "limit")


def test_counts_are_bounded() -> None:
    assert parse_count("0", "limit") == 0
    assert parse_count(str(2**63 - 1), "limit") == 2**63 - 1
    with pytest.raises(BadRequest):
        parse_count(str(2**63), "limit")


@pytest.mark.parametrize("value", [-1, 2**31, 2**64, True, 1.5, "1", None])
def test_integers_within_their_column(value: object) -> None:
    with pytest.raises(BadRequest):
        check_int(value, "min_disk", INT32_MAX)


def test_property_values_and_names_are_bounded() -> None:
    check_properties({"k" * 255: "v" * 10}, 10)
    with pytest.raises(BadRequest, match="image_property_value_max_length"):
        check_properties({"k": "v" * 11}, 10)
    with pytest.raises(BadRequest, match="255"):
        check_properties({"k" * 256: "v"}, 10)
    with pytest.raises(BadRequest):
        check_properties({"k": "a\x00"}, 10)


@pytest.mark.parametrize(
    "url",
    ["http://[::1", "http://[::1/x", "http://host:99999/", "http://host:port/", "http://", "/relative", "",
     "http://a b/", "http://h/\x00", "http://h/" + "x" * 3000, None, 7],
)  # fmt: skip
def test_malformed_urls_are_refused(url: object) -> None:
    with pytest.raises(BadRequest):
        check_url(url)


@pytest.mark.parametrize("url", ["http://[::1]:8080/x", "https://example.com/a?b=c", "http://10.0.0.1/i.qcow2"])
def test_urls_that_parse(url: str) -> None:
    assert check_url(url) == url


@pytest.mark.parametrize("value", ["../../v3/auth/tokens", "x", "", None, "00000000-0000-0000-0000-00000000000g"])
def test_uuids(value: object) -> None:
    with pytest.raises(BadRequest):
        check_uuid(value, "glance_image_id")
    assert check_uuid("00000000-0000-0000-0000-00000000000A", "id")


def test_check_hash_value_wants_hexadecimal_of_the_digest_size() -> None:
    """validation_data is judged before any data is read, with Glance's wording (Tempest checks the 400s)."""
    check_hash_value(None, "sha512")
    check_hash_value("ab" * 64, "sha512")
    check_hash_value("AB" * 16, "md5")
    with pytest.raises(BadRequest, match="not the correct size"):
        check_hash_value("dbc9e0f80d131e64b94913a7b40bb5", "sha512")
    with pytest.raises(BadRequest, match="not the correct size"):
        check_hash_value("ab" * 32, "sha512")  # a sha256 given as sha512
    for bad in ("xyz", "abc", 12, ["ab"]):
        with pytest.raises(BadRequest, match="not a valid hexadecimal"):
            check_hash_value(bad, "sha256")
