"""End-to-end integrity fields of RFC 9530 (`Content-Digest`, `Repr-Digest`): parse, format, verify.

Both fields are RFC 8941 structured-field dictionaries whose keys name a hash algorithm and whose values are byte
sequences (`sha-512=:<base64>:`). Only sha-256 and sha-512 are checked; other keys (the deprecated md5, crc32c,
... or names not yet registered) are skipped as RFC 9530 section 2 asks, so a field naming only those verifies
nothing. A field that is not a valid dictionary, or a known algorithm whose value is not a byte sequence of that
algorithm's length, is refused before any data is read.

Glimpse takes image data as sent, without content codings, so the content and the representation are the same
bytes and both fields are checked against them. Pure: no HTTP framework, usable by every upload path.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from glimpse.errors import BadRequest

CONTENT_DIGEST = "Content-Digest"
REPR_DIGEST = "Repr-Digest"
FIELDS = (CONTENT_DIGEST, REPR_DIGEST)

# RFC 9530 algorithm key -> hashlib name, digest length in bytes
ALGORITHMS: dict[str, tuple[str, int]] = {"sha-256": ("sha256", 32), "sha-512": ("sha512", 64)}
# Glance's os_hash_algo -> RFC 9530 key, for the download's Repr-Digest
_FROM_OS_HASH_ALGO = {"sha512": "sha-512", "sha256": "sha-256"}


class MalformedDigest(BadRequest):
    """A Content-Digest or Repr-Digest field that cannot be read."""


class DigestMismatch(BadRequest):
    """The data received does not have the digest the client declared."""


@dataclass(frozen=True)
class Digest:
    """One declared digest: the field it came in, the RFC 9530 algorithm key and the raw digest bytes."""

    field: str
    algorithm: str
    value: bytes

    @property
    def hexdigest(self) -> str:
        return self.value.hex()


def parse(field_name: str, text: str) -> list[Digest]:
    """The sha-256/sha-512 digests of one field (its lines joined with ", "); MalformedDigest when unreadable."""
    try:
        members = parse_dictionary(text)
    except ValueError as exc:
        raise MalformedDigest(f"The {field_name} header is not a valid structured-field dictionary: {exc}") from exc
    digests: list[Digest] = []
    for key, value in members.items():
        if key not in ALGORITHMS:
            continue
        size = ALGORITHMS[key][1]
        if not isinstance(value, bytes):
            raise MalformedDigest(f"The {key} value of the {field_name} header is not a byte sequence (:base64:).")
        if len(value) != size:
            raise MalformedDigest(
                f"The {key} value of the {field_name} header is {len(value)} bytes long; {key} digests are {size}."
            )
        digests.append(Digest(field_name, key, value))
    return digests


def parse_fields(lines: Iterable[tuple[str, str]]) -> list[Digest]:
    """Every checked digest in request header lines (name, value); lines of one field are combined first."""
    joined: dict[str, list[str]] = {}
    wanted = {name.lower(): name for name in FIELDS}
    for name, value in lines:
        canonical = wanted.get(name.lower())
        if canonical is not None:
            joined.setdefault(canonical, []).append(value)
    return [digest for name, values in joined.items() for digest in parse(name, ", ".join(values))]


def format_digest(algorithm: str, value: bytes) -> str:
    """One dictionary member, e.g. `sha-512=:<base64>:`."""
    return f"{algorithm}=:{base64.b64encode(value).decode('ascii')}:"


def repr_digest_for(os_hash_algo: str | None, os_hash_value: str | None) -> str | None:
    """The Repr-Digest value for stored data whose Glance multihash is known (None for other algorithms)."""
    algorithm = _FROM_OS_HASH_ALGO.get(os_hash_algo or "")
    if algorithm is None or not os_hash_value:
        return None
    try:
        value = bytes.fromhex(os_hash_value)
    except ValueError:
        return None
    return format_digest(algorithm, value) if len(value) == ALGORITHMS[algorithm][1] else None


def declared_hexdigest(digests: Iterable[Digest], algorithm: str) -> str | None:
    """The hex digest the client declared for `algorithm` ("sha-512"), None when it declared none.

    Two different declared values for one algorithm can never both match; the first one is returned and the
    check refuses the data anyway.
    """
    return next((digest.hexdigest for digest in digests if digest.algorithm == algorithm), None)


@dataclass
class DigestCheck:
    """Hashes data as it passes and compares it with the declared digests at the end.

    Hashes the upload path computes anyway (Glance's sha512 multihash) can be handed to `verify` through
    `known` so they are not computed twice; only the algorithms still missing are hashed here.
    """

    digests: list[Digest]
    skip: frozenset[str] = frozenset()
    _hashers: dict[str, hashlib._Hash] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for digest in self.digests:
            if digest.algorithm not in self.skip and digest.algorithm not in self._hashers:
                self._hashers[digest.algorithm] = hashlib.new(ALGORITHMS[digest.algorithm][0])

    def __bool__(self) -> bool:
        return bool(self.digests)

    def update(self, chunk: bytes) -> None:
        for hasher in self._hashers.values():
            hasher.update(chunk)

    def checked(self, chunks: Iterable[bytes]) -> Iterable[bytes]:
        """The same chunks, each one hashed as it passes (the very iterable when nothing needs hashing)."""
        return self._hashing(chunks) if self._hashers else chunks

    def _hashing(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.update(chunk)
            yield chunk

    def verify_stored(self, hash_algo: str, hash_value: str | None) -> None:
        """verify, reusing the multihash (Glance's os_hash_algo/os_hash_value) the store computed."""
        algorithm = _FROM_OS_HASH_ALGO.get(hash_algo)
        self.verify({algorithm: hash_value} if algorithm and hash_value and algorithm in self.skip else None)

    def verify(self, known: dict[str, str] | None = None) -> None:
        """DigestMismatch naming the first declared digest the data does not have.

        `known` maps RFC 9530 algorithm keys to hex digests computed elsewhere over the same bytes.
        """
        actual = {algorithm: hasher.hexdigest() for algorithm, hasher in self._hashers.items()}
        actual.update(known or {})
        for digest in self.digests:
            computed = actual.get(digest.algorithm)
            if computed is None:
                raise ValueError(f"no {digest.algorithm} hash was computed to check {digest.field}")
            if not hmac.compare_digest(computed, digest.hexdigest):
                raise DigestMismatch(
                    f"The data does not match its {digest.field} {digest.algorithm} digest "
                    f"(declared {format_digest(digest.algorithm, digest.value)}, "
                    f"received {format_digest(digest.algorithm, bytes.fromhex(computed))})."
                )


def digest_check(declared: Iterable[Digest], hash_algo: str) -> DigestCheck:
    """A check of the declared digests for an upload whose store hashes with `hash_algo` (Glance's
    hashing_algorithm): that algorithm's digest is taken from the store's result, not computed twice."""
    reused = _FROM_OS_HASH_ALGO.get(hash_algo)
    return DigestCheck(list(declared), frozenset({reused}) if reused else frozenset())


# RFC 8941 structured-field dictionaries. Values of skipped algorithms may be of any type, so the whole grammar is
# read: an unknown member that is itself malformed makes the field malformed.

Item = int | float | str | bytes | bool | list[object]

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_BASE64 = re.compile(r"[A-Za-z0-9+/=]*")
_MAX_FIELD = 16384  # request header lines are bounded by the server already; this keeps the parser's own work small


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > _MAX_FIELD:
            raise ValueError("the field is too long")
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, characters: str) -> None:
        while self.peek() and self.peek() in characters:
            self.pos += 1

    def match(self, pattern: re.Pattern[str], what: str) -> str:
        found = pattern.match(self.text, self.pos)
        if found is None or not found.group():
            raise ValueError(f"expected {what} at character {self.pos + 1}")
        self.pos = found.end()
        return found.group()

    def dictionary(self) -> dict[str, Item]:
        members: dict[str, Item] = {}
        self.skip(" ")
        while self.pos < len(self.text):
            key = self.match(_KEY, "a lowercase key")
            value: Item = True
            if self.peek() == "=":
                self.pos += 1
                value = self.inner_list() if self.peek() == "(" else self.bare_item()
            self.parameters()
            members[key] = value  # a repeated key: the last one counts (RFC 8941 section 4.2.2)
            self.skip(" \t")
            if self.pos >= len(self.text):
                break
            if self.peek() != ",":
                raise ValueError(f"expected ',' at character {self.pos + 1}")
            self.pos += 1
            self.skip(" \t")
            if self.pos >= len(self.text):
                raise ValueError("trailing ','")
        return members

    def inner_list(self) -> list[object]:
        self.pos += 1
        items: list[object] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.pos += 1
                self.parameters()
                return items
            items.append(self.bare_item())
            self.parameters()
            if self.peek() not in (" ", ")"):
                raise ValueError(f"expected ' ' or ')' at character {self.pos + 1}")

    def parameters(self) -> None:
        while self.peek() == ";":
            self.pos += 1
            self.skip(" ")
            self.match(_KEY, "a lowercase parameter key")
            if self.peek() == "=":
                self.pos += 1
                self.bare_item()

    def bare_item(self) -> Item:
        first = self.peek()
        if first == ":":
            return self.byte_sequence()
        if first == '"':
            return self.string()
        if first == "?":
            flag = self.text[self.pos + 1 : self.pos + 2]
            if flag not in ("0", "1"):
                raise ValueError(f"expected ?0 or ?1 at character {self.pos + 1}")
            self.pos += 2
            return flag == "1"
        if first == "-" or first.isdigit():
            return self.number()
        if first.isalpha() or first == "*":
            return self.match(_TOKEN, "a token")
        raise ValueError(f"expected a value at character {self.pos + 1}")

    def number(self) -> int | float:
        start = self.pos
        text = self.match(_NUMBER, "a number")
        whole, _, fraction = text.lstrip("-").partition(".")
        if ("." in text and (len(whole) > 12 or len(fraction) > 3)) or len(whole) > 15:
            raise ValueError(f"number out of range at character {start + 1}")
        return float(text) if "." in text else int(text)

    def string(self) -> str:
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\":
                escaped = self.peek()
                if escaped not in ('"', "\\") or not escaped:
                    raise ValueError(f"bad escape at character {self.pos}")
                out.append(escaped)
                self.pos += 1
            elif char == '"':
                return "".join(out)
            elif not " " <= char <= "~":
                raise ValueError(f"character not allowed in a string at character {self.pos}")
            else:
                out.append(char)
        raise ValueError("unterminated string")

    def byte_sequence(self) -> bytes:
        self.pos += 1
        found = _BASE64.match(self.text, self.pos)
        encoded = found.group() if found else ""
        self.pos += len(encoded)
        if self.peek() != ":":
            raise ValueError(f"unterminated byte sequence at character {self.pos + 1}")
        self.pos += 1
        # RFC 8941 section 4.2.7: parsers should accept missing "=" padding
        padded = encoded.rstrip("=") + "=" * (-len(encoded.rstrip("=")) % 4)
        try:
            return base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("a byte sequence is not valid base64") from exc


def parse_dictionary(text: str) -> dict[str, Item]:
    """An RFC 8941 dictionary's members (parameters dropped); ValueError when the text is not one."""
    return _Parser(text).dictionary()
