"""Checks every piece of user input passes before the domain keeps it or hands it to a database.

The databases set the bounds: PostgreSQL's text cannot hold NUL, no driver encodes a lone UTF-16
surrogate, and integer columns overflow past their width. Anything outside them is the caller's
mistake, so it is a BadRequest here and never a database error later.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from glimpse.errors import BadRequest

INT32_MAX = 2**31 - 1  # min_disk, min_ram: Integer columns, as in Glance's schema
INT64_MAX = 2**63 - 1  # sizes and counts: BigInteger columns
MAX_JSON_DEPTH = 32  # an image document is four levels deep at most (locations[].metadata.x)
MAX_URL_LENGTH = 2048
_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_ASCII_DIGITS = re.compile(r"^[0-9]+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def check_text(value: str, what: str) -> str:
    """The string unchanged, or BadRequest when it holds a NUL or an unpaired surrogate."""
    bad = _BAD_CHARS.search(value)
    if bad is not None:
        kind = "a NUL character" if bad.group() == "\x00" else "an unpaired UTF-16 surrogate"
        raise BadRequest(f"{what} contains {kind}, which cannot be stored.")
    return value


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        yield from node.keys()
        yield from node.values()
    elif isinstance(node, list):
        yield from node


def check_identifier(value: str, what: str) -> str:
    """A project, user or member id: storable text of at most 255 characters (its column's width)."""
    if len(value) > 255:
        raise BadRequest(f"{what} is longer than 255 characters.")
    return check_text(value, what)


def check_document(doc: Any, what: str = "The request body") -> None:
    """Every string in a parsed JSON document (keys included) is storable, and it is not nested too deep."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, str):
            check_text(node, what)
        elif isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"{what} is nested more than {MAX_JSON_DEPTH} levels deep.")
            stack.extend((child, depth + 1) for child in _children(node))


def check_properties(properties: dict[str, Any], max_value_length: int) -> None:
    """Extra properties: names of at most 255 storable characters, string values of at most max_value_length."""
    for key, value in properties.items():
        check_text(key, "A property name")
        if len(key) > 255:
            raise BadRequest(f"Property name '{key[:32]}...' is longer than 255 characters.")
        if isinstance(value, str):
            check_text(value, f"Property {key}")
            if len(value) > max_value_length:
                raise BadRequest(
                    f"The value of property {key} is longer than {max_value_length} characters "
                    "(image_property_value_max_length)."
                )


def parse_count(text: str, what: str, maximum: int = INT64_MAX) -> int:
    """A whole number written in ASCII digits, 0 to maximum (int() would also take '٣' or reject '²' late)."""
    if not _ASCII_DIGITS.match(text) or len(text) > 20:
        raise BadRequest(f"{what} must be a whole number written with the digits 0-9.")
    number = int(text)
    if number > maximum:
        raise BadRequest(f"{what} must be at most {maximum}.")
    return number


def check_uuid(value: Any, what: str) -> str:
    """An image id as Glance writes them; anything else could reach into another URL's path."""
    if not isinstance(value, str) or not _UUID.match(value):
        raise BadRequest(f"{what} must be a UUID.")
    return value


def check_int(value: Any, what: str, maximum: int = INT64_MAX) -> int:
    """A JSON integer within the database's column (bool is not an integer here)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= maximum:
        raise BadRequest(f"{what} must be an integer from 0 to {maximum}.")
    return value


def check_url(url: Any, what: str = "URL", max_length: int = MAX_URL_LENGTH) -> str:
    """A URL that parses (host and port included): malformed ones are refused before anything fetches them."""
    if not isinstance(url, str) or not url:
        raise BadRequest(f"{what} must be a non-empty string.")
    if len(url) > max_length:
        raise BadRequest(f"{what} is longer than {max_length} characters.")
    check_text(url, what)
    if any(ord(c) < 0x21 or c == "\x7f" for c in url):
        raise BadRequest(f"{what} {url!r} contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is no number or out of range)
    except ValueError as exc:
        raise BadRequest(f"{what} {url!r} is malformed: {exc}.") from None
    if not parts.scheme or not parts.hostname:
        raise BadRequest(f"{what} {url!r} must be absolute: scheme://host/...")
    return url


def check_hash_value(value: Any, algo: str) -> None:
    """As Glance checks validation_data before reading anything: hexadecimal, of the algorithm's digest size."""
    if value is None:
        return
    try:
        digest = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        digest = None
    if digest is None:
        raise BadRequest(f"os_hash_value ({value}) is not a valid hexadecimal value.")
    size = hashlib.new(algo).digest_size
    if len(digest) != size:
        raise BadRequest(f"os_hash_value: ({value}) is not the correct size for ({algo}) (should be ({size}) bytes).")
