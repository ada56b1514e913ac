"""The checks of signed images' data (domain/signatures.py) with real keys and signatures; the key manager is a
dictionary of certificates here (tests/functional/test_signed_images.py runs them against a real Barbican)."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.x509.oid import NameOID

from glimpse.domain.entities import Image, ManagedCertificate
from glimpse.domain.signature_checks import KEY_TYPES, SignatureGuard
from glimpse.domain.signatures import Signatures, is_signed
from glimpse.errors import BadRequest, KeyManagerRefused, KeyManagerUnavailable, NotFound

DATA = [b"a" * 1000, b"b" * 70000, b"c"]
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | dsa.DSAPrivateKey


def _der(key: PrivateKey, days: int = 30) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "signer")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now + datetime.timedelta(days=days - 60))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def _sign(key: PrivateKey, data: bytes, hash_method: hashes.HashAlgorithm) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        pss = padding.PSS(mgf=padding.MGF1(hash_method), salt_length=padding.PSS.MAX_LENGTH)
        signature = key.sign(data, pss, hash_method)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(data, ec.ECDSA(hash_method))
    else:
        signature = key.sign(data, hash_method)
    return base64.b64encode(signature).decode()


class Certificates:
    def __init__(self, **certificates: ManagedCertificate) -> None:
        self.certificates = certificates
        self.error: Exception | None = None
        self.asked: list[tuple[str, str | None, str | None]] = []

    def certificate(self, cert_id: str, auth_token: str | None, project_id: str | None) -> ManagedCertificate:
        self.asked.append((cert_id, auth_token, project_id))
        if self.error is not None:
            raise self.error
        if cert_id not in self.certificates:
            raise NotFound(cert_id)
        return self.certificates[cert_id]


def _image(**properties: str) -> Image:
    return Image(id="img-1", owner="p1", properties=dict(properties))


def _signed(key: PrivateKey, key_type: str, hash_name: str, hash_method: hashes.HashAlgorithm) -> Image:
    return _image(
        img_signature=_sign(key, b"".join(DATA), hash_method),
        img_signature_hash_method=hash_name,
        img_signature_key_type=key_type,
        img_signature_certificate_uuid="cert",
    )


def _consume(chunks: Any) -> bytes:
    return b"".join(chunks)


KEYS = [
    (lambda: rsa.generate_private_key(65537, 2048), "RSA-PSS", "SHA-256", hashes.SHA256()),
    (lambda: rsa.generate_private_key(65537, 2048), "RSA-PSS", "SHA-224", hashes.SHA224()),
    (lambda: ec.generate_private_key(ec.SECP384R1()), "ECC_SECP384R1", "SHA-384", hashes.SHA384()),
    (lambda: ec.generate_private_key(ec.SECP521R1()), "ECC_SECP521R1", "SHA-512", hashes.SHA512()),
    (lambda: dsa.generate_private_key(2048), "DSA", "SHA-256", hashes.SHA256()),
]


@pytest.mark.parametrize(("make_key", "key_type", "hash_name", "hash_method"), KEYS)
def test_good_data_passes_and_one_changed_byte_is_refused_at_the_end(
    make_key: Any, key_type: str, hash_name: str, hash_method: hashes.HashAlgorithm
) -> None:
    key = make_key()
    source = Certificates(cert=ManagedCertificate("X.509", _der(key)))
    image = _signed(key, key_type, hash_name, hash_method)
    verifier = Signatures(source).verifier(image, "token", "p1")
    assert verifier is not None
    guard = SignatureGuard(DATA, verifier)
    assert _consume(guard) == b"".join(DATA)
    assert guard.verified
    assert source.asked == [("cert", "token", "p1")]

    tampered = [DATA[0], DATA[1][:-1] + b"B", DATA[2]]
    passed: list[bytes] = []
    refused = "Signature verification failed for image img-1: Signature verification failed"
    with pytest.raises(BadRequest, match=refused):
        for chunk in SignatureGuard(tampered, verifier):
            passed.append(chunk)
    assert passed == tampered  # every byte went through before the refusal: the store consuming it discards them


def test_expired_certificate_is_accepted_as_glance_accepts_it() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    source = Certificates(cert=ManagedCertificate("X.509", _der(key, days=-1)))
    verifier = Signatures(source).verifier(_signed(key, "ECC_SECP384R1", "SHA-384", hashes.SHA384()), "t", "p1")
    assert verifier is not None
    _consume(SignatureGuard(DATA, verifier))


def test_only_an_image_with_all_four_properties_is_verified() -> None:
    assert not is_signed({"img_signature": "x", "img_signature_hash_method": "SHA-256"})
    source = Certificates()
    assert Signatures(source).verifier(_image(img_signature="AAAA"), "t", "p") is None
    assert source.asked == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"img_signature": "AAA"}, "not properly encoded using base64"),  # bad padding
        ({"img_signature": "é"}, "not properly encoded using base64"),
        ({"img_signature_hash_method": "MD5"}, "Invalid signature hash method: MD5"),
        ({"img_signature_key_type": "ECC_SECP256R1"}, "Invalid signature key type: ECC_SECP256R1"),
        ({"img_signature_key_type": "DSA"}, "Invalid public key type for signature key type: DSA"),
        ({"img_signature": ""}, "Error occurred while creating the verifier"),
    ],
)
def test_malformed_properties_are_refused_with_cursives_reasons(change: dict[str, str], reason: str) -> None:
    key = rsa.generate_private_key(65537, 2048)
    source = Certificates(cert=ManagedCertificate("X.509", _der(key)))
    image = _signed(key, "RSA-PSS", "SHA-256", hashes.SHA256())
    image.properties.update(change)
    with pytest.raises(BadRequest, match=reason):
        Signatures(source).verifier(image, "t", "p")


def test_the_key_managers_answers() -> None:
    key = rsa.generate_private_key(65537, 2048)
    image = _signed(key, "RSA-PSS", "SHA-256", hashes.SHA256())
    source = Certificates()
    with pytest.raises(BadRequest, match="Certificate not found with ID: cert"):
        Signatures(source).verifier(image, "t", "p")
    source.certificates["cert"] = ManagedCertificate("RAW", b"x")
    with pytest.raises(BadRequest, match="Invalid certificate format: RAW"):
        Signatures(source).verifier(image, "t", "p")
    source.certificates["cert"] = ManagedCertificate("X.509", b"not DER")
    with pytest.raises(BadRequest, match="could not be read"):
        Signatures(source).verifier(image, "t", "p")
    source.error = KeyManagerRefused("403")
    with pytest.raises(BadRequest, match="Unable to retrieve certificate with ID: cert"):
        Signatures(source).verifier(image, "t", "p")
    source.error = KeyManagerUnavailable("the key manager could not be reached")
    with pytest.raises(KeyManagerUnavailable, match="Unable to retrieve certificate with ID: cert: the key manager"):
        Signatures(source).verifier(image, "t", "p")
    with pytest.raises(KeyManagerUnavailable, match="glimpse\\[signing\\]"):
        Signatures(None).verifier(image, "t", "p")


def test_an_import_carries_the_certificate_fetched_when_it_was_asked_for() -> None:
    key = ec.generate_private_key(ec.SECP521R1())
    image = _signed(key, "ECC_SECP521R1", "SHA-512", hashes.SHA512())
    source = Certificates(cert=ManagedCertificate("X.509", _der(key)))
    record = Signatures(source).record(image, "t", "p")
    assert record is not None and record["cert_id"] == "cert"
    # The worker has no token and no key manager: the record is all it needs.
    verifier = Signatures(None).verifier_for_task(image, record)
    assert verifier is not None
    _consume(SignatureGuard(DATA, verifier))
    # The certificate named by the image changed since: refused, not verified with the old one.
    image.properties["img_signature_certificate_uuid"] = "other"
    with pytest.raises(BadRequest, match="not the one set when the import was requested"):
        Signatures(None).verifier_for_task(image, record)
    with pytest.raises(BadRequest, match="not the one set"):
        Signatures(None).verifier_for_task(image, None)


def test_an_import_asked_for_while_the_key_manager_failed_fails_with_that_reason() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    image = _signed(key, "ECC_SECP384R1", "SHA-384", hashes.SHA384())
    source = Certificates()
    source.error = KeyManagerUnavailable("the key manager could not be reached")
    record = Signatures(source).record(image, "t", "p")
    with pytest.raises(KeyManagerUnavailable, match="could not be reached"):
        Signatures(None).verifier_for_task(image, record)
    source.error = None
    record = Signatures(source).record(image, "t", "p")
    with pytest.raises(BadRequest, match="Certificate not found"):
        Signatures(None).verifier_for_task(image, record)


def test_glances_curves_this_cryptography_offers() -> None:
    assert {"RSA-PSS", "DSA", "ECC_SECP384R1", "ECC_SECP521R1"} <= set(KEY_TYPES)
    assert not {name for name in KEY_TYPES if name.startswith("ECC_SECP2")}
