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
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from glimpse.domain.entities import Image, ManagedCertificate
from glimpse.domain.ports import CertificateSource
from glimpse.errors import BadRequest, GlimpseError, KeyManagerRefused, KeyManagerUnavailable, NotFound

if TYPE_CHECKING:  # cryptography is imported only for a signed image (signature_checks.py)
    from glimpse.domain.signature_checks import Claimed, Verifier

SIGNATURE = "img_signature"
HASH_METHOD = "img_signature_hash_method"
KEY_TYPE = "img_signature_key_type"
CERT_UUID = "img_signature_certificate_uuid"
PROPERTIES = (SIGNATURE, HASH_METHOD, KEY_TYPE, CERT_UUID)


def is_signed(properties: dict[str, str]) -> bool:
    """Glance verifies only an image with all four properties."""
    return all(properties.get(name) is not None for name in PROPERTIES)


def _refused(image_id: str, reason: str) -> BadRequest:
    return BadRequest(
        f"Signature verification failed for image {image_id}: Signature verification for the image failed: {reason}."
    )


def guarded(chunks: Iterable[bytes], verifier: Verifier | None) -> Iterable[bytes]:
    if verifier is None:
        return chunks
    from glimpse.domain.signature_checks import SignatureGuard  # a verifier exists: already imported

    return SignatureGuard(chunks, verifier)


def _claimed(image_id: str, properties: dict[str, str]) -> Claimed:
    from glimpse.domain import signature_checks  # cryptography, only once an image is signed

    try:
        return signature_checks.claimed(properties[SIGNATURE], properties[HASH_METHOD], properties[KEY_TYPE])
    except signature_checks.Refused as exc:
        raise _refused(image_id, exc.reason) from None


def build_verifier(image_id: str, properties: dict[str, str], certificate: ManagedCertificate) -> Verifier:
    """The verifier of an image's data, from its properties and the certificate they name."""
    from glimpse.domain import signature_checks

    claim = _claimed(image_id, properties)
    try:
        return signature_checks.verifier(image_id, claim, certificate, properties[CERT_UUID])
    except signature_checks.Refused as exc:
        raise _refused(image_id, exc.reason) from None


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
