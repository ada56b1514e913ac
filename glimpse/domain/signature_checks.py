"""The cryptography half of signed images: the hash and key types Glance accepts, a certificate's key, and the
check of the data's signature as it streams.

Only an image carrying all four img_signature* properties reaches this module (signatures.py imports it then):
cryptography is about 9 MiB in every worker that imports it, and most never see a signed image.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa, utils

from glimpse.domain.entities import ManagedCertificate
from glimpse.errors import BadRequest

CERTIFICATE_FORMAT = "X.509"

HASH_METHODS: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "SHA-224": hashes.SHA224,
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}
# Glance's curves: only those of 384 bits and more, and of those only the ones this cryptography offers (version 50
# dropped the binary SECT curves: ECC_SECT* key types are then refused as unknown, as cursive refuses a curve its
# backend lacks).
_CURVE_NAMES = ("SECT571K1", "SECT409K1", "SECT571R1", "SECT409R1", "SECP521R1", "SECP384R1")


def _curves() -> list[ec.EllipticCurve]:
    found = []
    for name in _CURVE_NAMES:
        curve_class = getattr(ec, name, None)
        if curve_class is not None and default_backend().elliptic_curve_supported(curve_class()):
            found.append(curve_class())
    return found


KEY_TYPES: dict[str, type] = {
    "RSA-PSS": rsa.RSAPublicKey,
    "DSA": dsa.DSAPublicKey,
    **{f"ECC_{curve.name.upper()}": ec.EllipticCurvePublicKey for curve in _curves()},
}

PublicKey = rsa.RSAPublicKey | dsa.DSAPublicKey | ec.EllipticCurvePublicKey


@dataclass(frozen=True)
class Verifier:
    """What the data's signature is checked with: the decoded signature, the hash and the certificate's key."""

    image_id: str
    signature: bytes
    hash_method: hashes.HashAlgorithm
    public_key: PublicKey

    def verify(self, digest: bytes) -> None:
        prehashed = utils.Prehashed(self.hash_method)
        try:
            if isinstance(self.public_key, rsa.RSAPublicKey):
                pss = padding.PSS(mgf=padding.MGF1(self.hash_method), salt_length=padding.PSS.MAX_LENGTH)
                self.public_key.verify(self.signature, digest, pss, prehashed)
            elif isinstance(self.public_key, ec.EllipticCurvePublicKey):
                self.public_key.verify(self.signature, digest, ec.ECDSA(prehashed))
            else:
                self.public_key.verify(self.signature, digest, prehashed)
        except InvalidSignature:
            raise BadRequest(
                f"Signature verification failed for image {self.image_id}: Signature verification failed"
            ) from None


class SignatureGuard:
    """Passes chunks through while hashing them; after the last one, raises BadRequest unless the signature holds."""

    def __init__(self, chunks: Iterable[bytes], verifier: Verifier) -> None:
        self._chunks = chunks
        self._verifier = verifier
        self.verified = False

    def __iter__(self) -> Iterator[bytes]:
        digest = hashes.Hash(self._verifier.hash_method)
        for chunk in self._chunks:
            digest.update(chunk)
            yield chunk
        self._verifier.verify(digest.finalize())
        self.verified = True


class Refused(Exception):
    """The image's signature properties or its certificate cannot give a verifier; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Claimed:
    """What the image's properties claim, checked (before any key manager is asked, as cursive does)."""

    signature: bytes
    hash_method: hashes.HashAlgorithm
    key_type: str
    key_class: type


def claimed(signature: str, hash_method: str, key_type: str) -> Claimed:
    try:
        decoded = base64.b64decode(signature.encode("ascii"))
    except (ValueError, binascii.Error):
        raise Refused("The signature data was not properly encoded using base64") from None
    hash_factory = HASH_METHODS.get(hash_method)
    if hash_factory is None:
        raise Refused(f"Invalid signature hash method: {hash_method}")
    key_class = KEY_TYPES.get(key_type)
    if key_class is None:
        raise Refused(f"Invalid signature key type: {key_type}")
    return Claimed(decoded, hash_factory(), key_type, key_class)


def verifier(image_id: str, claim: Claimed, certificate: ManagedCertificate, cert_id: str) -> Verifier:
    """The verifier of an image's data, from what its properties claim and the certificate they name."""
    if certificate.format != CERTIFICATE_FORMAT:
        raise Refused(f"Invalid certificate format: {certificate.format}")
    try:
        public_key = x509.load_der_x509_certificate(certificate.data).public_key()
    except ValueError:
        raise Refused(f"The certificate {cert_id} could not be read as DER X.509") from None
    if not isinstance(public_key, claim.key_class):
        raise Refused(f"Invalid public key type for signature key type: {claim.key_type}")
    if not claim.signature:
        raise Refused("Error occurred while creating the verifier")
    return Verifier(image_id, claim.signature, claim.hash_method, public_key)  # type: ignore[arg-type]
