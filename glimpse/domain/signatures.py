"""Signed images: data whose image carries the four img_signature* properties is checked while it streams in.

As Glance (through cursive) does it: verification happens only when all four properties are set (an image with
some of them is taken unverified); the certificate comes from the key manager, asked with the caller's token; the
signature is over the hash of the data (SHA-224/256/384/512), made with an RSA key (PSS padding, MGF1, maximal salt),
an elliptic-curve key on a curve of 384 bits or more, or a DSA key. Like Glance, neither the certificate's validity
dates nor its chain are checked here: Nova checks those, against its trusted certificates, when it boots the image.

The refusal comes out of the iteration itself (SignatureGuard), after the last byte and before the store may
finish, so a refused image leaves no data anywhere, exactly as a refused disk format does.

An import runs later, in any API process, without the caller's token; the certificate is therefore fetched when
the import is asked for (with the caller's token) and travels with the task as a `CertificateRecord`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.backends import default_backend
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa, utils

from glimpse.domain.entities import Image, ManagedCertificate
from glimpse.domain.ports import CertificateSource
from glimpse.errors import BadRequest, GlimpseError, KeyManagerRefused, KeyManagerUnavailable, NotFound

SIGNATURE = "img_signature"
HASH_METHOD = "img_signature_hash_method"
KEY_TYPE = "img_signature_key_type"
CERT_UUID = "img_signature_certificate_uuid"
PROPERTIES = (SIGNATURE, HASH_METHOD, KEY_TYPE, CERT_UUID)

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
CERTIFICATE_FORMAT = "X.509"

PublicKey = rsa.RSAPublicKey | dsa.DSAPublicKey | ec.EllipticCurvePublicKey


def is_signed(properties: dict[str, str]) -> bool:
    """Glance verifies only an image with all four properties."""
    return all(properties.get(name) is not None for name in PROPERTIES)


def _refused(image_id: str, reason: str) -> BadRequest:
    return BadRequest(
        f"Signature verification failed for image {image_id}: Signature verification for the image failed: {reason}."
    )


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


def guarded(chunks: Iterable[bytes], verifier: Verifier | None) -> Iterable[bytes]:
    return chunks if verifier is None else SignatureGuard(chunks, verifier)


@dataclass(frozen=True)
class _Claimed:
    """What the image's properties claim, checked (before any key manager is asked, as cursive does)."""

    signature: bytes
    hash_method: hashes.HashAlgorithm
    key_type: str
    key_class: type


def _claimed(image_id: str, properties: dict[str, str]) -> _Claimed:
    try:
        signature = base64.b64decode(properties[SIGNATURE].encode("ascii"))
    except (ValueError, binascii.Error):
        raise _refused(image_id, "The signature data was not properly encoded using base64") from None
    hash_factory = HASH_METHODS.get(properties[HASH_METHOD])
    if hash_factory is None:
        raise _refused(image_id, f"Invalid signature hash method: {properties[HASH_METHOD]}")
    key_class = KEY_TYPES.get(properties[KEY_TYPE])
    if key_class is None:
        raise _refused(image_id, f"Invalid signature key type: {properties[KEY_TYPE]}")
    return _Claimed(signature, hash_factory(), properties[KEY_TYPE], key_class)


def build_verifier(image_id: str, properties: dict[str, str], certificate: ManagedCertificate) -> Verifier:
    """The verifier of an image's data, from its properties and the certificate they name."""
    claimed = _claimed(image_id, properties)
    if certificate.format != CERTIFICATE_FORMAT:
        raise _refused(image_id, f"Invalid certificate format: {certificate.format}")
    try:
        public_key = x509.load_der_x509_certificate(certificate.data).public_key()
    except ValueError:
        raise _refused(image_id, f"The certificate {properties[CERT_UUID]} could not be read as DER X.509") from None
    if not isinstance(public_key, claimed.key_class):
        raise _refused(image_id, f"Invalid public key type for signature key type: {claimed.key_type}")
    if not claimed.signature:
        raise _refused(image_id, "Error occurred while creating the verifier")
    return Verifier(image_id, claimed.signature, claimed.hash_method, public_key)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CertificateRecord:
    """The certificate an import was asked with (or why it could not be had), kept in the task's input."""

    cert_id: str
    certificate: ManagedCertificate | None = None
    error: str | None = None
    unavailable: bool = False

    def as_dict(self) -> dict[str, Any]:
        if self.certificate is None:
            return {"cert_id": self.cert_id, "error": self.error, "unavailable": self.unavailable}
        data = base64.b64encode(self.certificate.data).decode("ascii")
        return {"cert_id": self.cert_id, "format": self.certificate.format, "data": data}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> CertificateRecord:
        if raw.get("data") is None:
            return cls(str(raw["cert_id"]), error=raw.get("error"), unavailable=bool(raw.get("unavailable")))
        certificate = ManagedCertificate(str(raw["format"]), base64.b64decode(raw["data"]))
        return cls(str(raw["cert_id"]), certificate)


class Signatures:
    """Builds the verifier of a signed image's data; `source` is None when castellan is not installed."""

    def __init__(self, source: CertificateSource | None) -> None:
        self.source = source

    def verifier(self, image: Image, auth_token: str | None, project_id: str | None) -> Verifier | None:
        """For an upload: None when the image is not signed; raises when its signature cannot be checked."""
        if not is_signed(image.properties):
            return None
        _claimed(image.id, image.properties)  # a malformed signature is refused before the key manager is asked
        certificate = self._certificate(image, auth_token, project_id)
        return build_verifier(image.id, image.properties, certificate)

    def record(self, image: Image, auth_token: str | None, project_id: str | None) -> dict[str, Any] | None:
        """For an import being asked for: the certificate it will need, fetched now with the caller's token.

        A failure is recorded, not raised: as in Glance, the import is accepted and its task fails with the reason."""
        if not is_signed(image.properties):
            return None
        cert_id = image.properties[CERT_UUID]
        try:
            record = CertificateRecord(cert_id, self._certificate(image, auth_token, project_id))
        except KeyManagerUnavailable as exc:
            record = CertificateRecord(cert_id, error=exc.message, unavailable=True)
        except GlimpseError as exc:
            record = CertificateRecord(cert_id, error=exc.message)
        return record.as_dict()

    def verifier_for_task(self, image: Image, recorded: dict[str, Any] | None) -> Verifier | None:
        """For an import running: checked against the image's properties as they are now (as Glance reads them when
        its task runs), with the certificate recorded when the import was asked for."""
        if not is_signed(image.properties):
            return None
        cert_id = image.properties[CERT_UUID]
        record = CertificateRecord.from_dict(recorded) if recorded else None
        if record is None or record.cert_id != cert_id:
            raise _refused(
                image.id,
                f"The image's certificate {cert_id} was not the one set when the import was requested; "
                "request the import again",
            )
        if record.certificate is None:
            error = record.error or _refused(image.id, f"Unable to retrieve certificate with ID: {cert_id}").message
            raise KeyManagerUnavailable(error) if record.unavailable else BadRequest(error)
        return build_verifier(image.id, image.properties, record.certificate)

    def _certificate(self, image: Image, auth_token: str | None, project_id: str | None) -> ManagedCertificate:
        cert_id = image.properties[CERT_UUID]
        if self.source is None:
            raise KeyManagerUnavailable(
                f"Signature verification failed for image {image.id}: image {image.id} is signed, and checking "
                "signatures needs the key manager library castellan: install it with pip install 'glimpse[signing]'."
            )
        try:
            return self.source.certificate(cert_id, auth_token, project_id)
        except NotFound:
            raise _refused(image.id, f"Certificate not found with ID: {cert_id}") from None
        except KeyManagerUnavailable as exc:
            raise KeyManagerUnavailable(
                f"Signature verification failed for image {image.id}: Unable to retrieve certificate with ID: "
                f"{cert_id}: {exc.message}"
            ) from None
        except KeyManagerRefused:
            raise _refused(image.id, f"Unable to retrieve certificate with ID: {cert_id}") from None
