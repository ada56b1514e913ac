"""Signed images with a real Barbican: Glimpse behind a real Keystone fetches the certificate through castellan with
the caller's token, and the real `openstack` client uploads images signed as Glance's documentation shows (openssl).

Each refusal is checked as Glance answers it (400 and its message, 503 when Barbican is down) and for what it leaves:
the image queued again, no data in the store, nothing reserved against the quota.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from castellan import key_manager
from castellan.common.objects import x_509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import NameOID
from oslo_config import cfg
from oslo_context.context import RequestContext

from tests.barbican.fixtures import barbican_server  # noqa: F401  (a real Barbican)
from tests.barbican.server import BarbicanServer
from tests.disk_bytes import raw_disk_bytes
from tests.functional.clients import Clients
from tests.functional.server import GlimpseServer
from tests.keystone.server import KeystoneServer
from tests.keystone.setup import authtoken_conf, issue_token, openstack_env, register_image_service

KEYSTONE_FLAVOR = "[paste_deploy]\nflavor = keystone\n"
SIGNED_PROPERTIES = ("img_signature", "img_signature_hash_method", "img_signature_key_type")
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | dsa.DSAPrivateKey


@pytest.fixture(scope="module")
def glimpse_signing(
    keystone_server: KeystoneServer,
    keystone_projects: dict[str, Any],
    barbican_server: BarbicanServer,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GlimpseServer]:
    # No [barbican] section: castellan authenticates at [keystone_authtoken]'s Keystone and finds Barbican in the
    # caller's catalog.
    server = GlimpseServer(
        tmp_path_factory.mktemp("glimpse-signing"), extra_conf=KEYSTONE_FLAVOR + authtoken_conf(keystone_server)
    ).start()
    register_image_service(keystone_server, server.url)
    yield server
    server.stop()


class User:
    def __init__(self, ks: KeystoneServer, projects: dict[str, Any], name: str, home: Path, endpoint: str) -> None:
        info = projects["users"][name]
        self.project_id = str(info["project_id"])
        self.token = issue_token(ks.url, name, info["password"], info["project"])[0]
        self.cli = Clients(endpoint, home / name, openstack_env(ks, name, info["project"], info["password"]))
        self.http = httpx.Client(base_url=endpoint, headers={"X-Auth-Token": self.token}, timeout=60)
        self.ks = ks

    def store_certificate(self, certificate: x509.Certificate) -> str:
        """Into Barbican through castellan, with this user's token (a secret of type certificate)."""
        conf = cfg.ConfigOpts()
        conf([], default_config_files=[])
        manager = key_manager.API(conf)
        conf.set_override("auth_endpoint", self.ks.url, "barbican")
        der = certificate.public_bytes(serialization.Encoding.DER)
        context = RequestContext(auth_token=self.token, project_id=self.project_id)
        return str(manager.store(context, x_509.X509(der)))


@pytest.fixture
def member(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], glimpse_signing: GlimpseServer, tmp_path: Path
) -> User:
    return User(keystone_server, keystone_projects, "Prj1-member", tmp_path, glimpse_signing.url)


def _certificate(key: PrivateKey, days: int = 30) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "glimpse image signing")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )


def _openssl_sign(key: PrivateKey, digest: str, data: Path, pss: bool) -> str:
    """The signature as Glance's documentation makes it: openssl dgst -sign (-sigopt rsa_padding_mode:pss), base64."""
    pem = data.with_suffix(".key.pem")
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    out = data.with_suffix(".sig")
    options = ["-sigopt", "rsa_padding_mode:pss"] if pss else []
    subprocess.run(
        ["openssl", "dgst", f"-{digest}", "-sign", str(pem), *options, "-out", str(out), str(data)],
        check=True,
        capture_output=True,
    )
    return base64.b64encode(out.read_bytes()).decode()


def _disk(tmp_path: Path, name: str = "disk.raw", size: int = 512 * 1024 + 3) -> Path:
    path = tmp_path / name
    path.write_bytes(raw_disk_bytes(size))
    return path


def _tampered(source: Path) -> Path:
    """The same bytes with one of them changed."""
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0x01
    path = source.with_name("tampered-" + source.name)
    path.write_bytes(bytes(data))
    return path


def _properties(signature: str, hash_method: str, key_type: str, cert_id: str) -> dict[str, str]:
    return {
        "img_signature": signature,
        "img_signature_hash_method": hash_method,
        "img_signature_key_type": key_type,
        "img_signature_certificate_uuid": cert_id,
    }


def _rsa_signed(user: User, tmp_path: Path, digest: str = "sha256", bits: int = 2048) -> tuple[Path, dict[str, str]]:
    """A disk signed with a new RSA key (PSS, as openssl makes it) whose certificate `user` stored in Barbican."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    cert_id = user.store_certificate(_certificate(key))
    source = _disk(tmp_path)
    signature = _openssl_sign(key, digest, source, pss=True)
    return source, _properties(signature, f"SHA-{digest[3:]}", "RSA-PSS", cert_id)


def _cli_create(user: User, name: str, source: Path, properties: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = ["image", "create", "--disk-format", "raw", "--container-format", "bare", "--file", str(source)]
    for key, value in properties.items():
        args += ["--property", f"{key}={value}"]
    return user.cli.openstack(*args, name, "-f", "json", check=False)


def _json_id(stdout: str) -> str:
    return str(json.loads(stdout)["id"])


def _create(user: User, properties: dict[str, str]) -> str:
    body = {"name": f"signed-{uuid.uuid4().hex[:6]}", "disk_format": "raw", "container_format": "bare", **properties}
    response = user.http.post("/v2/images", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _put(user: User, image_id: str, data: bytes) -> httpx.Response:
    return user.http.put(
        f"/v2/images/{image_id}/file", content=data, headers={"Content-Type": "application/octet-stream"}
    )


def _stored_files(server: GlimpseServer) -> list[str]:
    folder = server.data_dir / "images"
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def _used_bytes(user: User) -> int:
    usage = user.http.get("/v2/info/usage").json()["usage"]
    return int(usage["image_size_total"]["usage"])


def _assert_nothing_kept(user: User, server: GlimpseServer, image_id: str, files_before: list[str]) -> None:
    image = user.http.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "queued"
    assert image["size"] is None and image["checksum"] is None
    assert _stored_files(server) == files_before
    assert not any(image_id in name for name in _stored_files(server))


def test_rsa_pss_signed_image_accepted_and_one_byte_changed_refused(
    member: User, glimpse_signing: GlimpseServer, tmp_path: Path
) -> None:
    source, properties = _rsa_signed(member, tmp_path)
    cert_id = properties["img_signature_certificate_uuid"]

    created = _cli_create(member, f"signed-{uuid.uuid4().hex[:6]}", source, properties)
    assert created.returncode == 0, created.stderr
    image = member.cli.openstack_json("image", "show", _json_id(created.stdout))
    assert image["status"] == "active"
    assert image["properties"]["img_signature_certificate_uuid"] == cert_id
    assert image["size"] == source.stat().st_size

    files_before = _stored_files(glimpse_signing)
    used_before = _used_bytes(member)
    name = f"tampered-{uuid.uuid4().hex[:6]}"
    refused = _cli_create(member, name, _tampered(source), properties)
    assert refused.returncode != 0
    assert "400" in refused.stderr and "/file" in refused.stderr  # openstacksdk shows the status, not Glance's body
    # openstacksdk deletes the image it made when its upload fails; the server kept no byte of it.
    assert member.cli.openstack_json("image", "list", "--name", name) == []
    assert _stored_files(glimpse_signing) == files_before
    assert _used_bytes(member) == used_before

    # The answer itself, as Glance gives it: 400 with the reason; the image is queued again, with nothing kept, and
    # takes a good upload afterwards.
    tampered_id = _create(member, properties)
    response = _put(member, tampered_id, _tampered(source).read_bytes())
    assert response.status_code == 400
    assert f"Signature verification failed for image {tampered_id}: Signature verification failed" in response.text
    _assert_nothing_kept(member, glimpse_signing, tampered_id, files_before)
    assert _used_bytes(member) == used_before
    assert _put(member, tampered_id, source.read_bytes()).status_code == 204
    assert member.http.get(f"/v2/images/{tampered_id}").json()["status"] == "active"


@pytest.mark.parametrize(
    ("curve", "digest", "hash_method"),
    [(ec.SECP384R1(), "sha384", "SHA-384"), (ec.SECP521R1(), "sha512", "SHA-512")],
)
def test_ecc_signed_image_accepted_and_tampered_refused(
    member: User, glimpse_signing: GlimpseServer, tmp_path: Path, curve: ec.EllipticCurve, digest: str, hash_method: str
) -> None:
    key = ec.generate_private_key(curve)
    cert_id = member.store_certificate(_certificate(key))
    source = _disk(tmp_path)
    key_type = f"ECC_{curve.name.upper()}"
    properties = _properties(_openssl_sign(key, digest, source, pss=False), hash_method, key_type, cert_id)

    created = _cli_create(member, f"ecc-{uuid.uuid4().hex[:6]}", source, properties)
    assert created.returncode == 0, created.stderr
    assert member.cli.openstack_json("image", "show", _json_id(created.stdout))["status"] == "active"

    files_before = _stored_files(glimpse_signing)
    image_id = _create(member, properties)
    response = _put(member, image_id, _tampered(source).read_bytes())
    assert response.status_code == 400
    assert "Signature verification failed" in response.text
    _assert_nothing_kept(member, glimpse_signing, image_id, files_before)


def test_unknown_certificate_refused_before_any_data(member: User, glimpse_signing: GlimpseServer) -> None:
    missing = str(uuid.uuid4())
    signature = base64.b64encode(os.urandom(256)).decode()
    image_id = _create(member, _properties(signature, "SHA-256", "RSA-PSS", missing))
    files_before = _stored_files(glimpse_signing)
    response = _put(member, image_id, raw_disk_bytes(4096))
    assert response.status_code == 400
    assert f"Certificate not found with ID: {missing}" in response.text
    _assert_nothing_kept(member, glimpse_signing, image_id, files_before)


def test_another_projects_certificate_is_not_reachable(
    keystone_server: KeystoneServer,
    keystone_projects: dict[str, Any],
    member: User,
    glimpse_signing: GlimpseServer,
    tmp_path: Path,
) -> None:
    """Barbican keeps Prj1's certificate from Prj2, since castellan asks with the caller's own token."""
    source, properties = _rsa_signed(member, tmp_path)
    cert_id = properties["img_signature_certificate_uuid"]
    other = User(keystone_server, keystone_projects, "Prj2-member", tmp_path, glimpse_signing.url)
    image_id = _create(other, properties)
    response = _put(other, image_id, source.read_bytes())
    assert response.status_code == 400
    assert f"Unable to retrieve certificate with ID: {cert_id}" in response.text
    assert other.http.get(f"/v2/images/{image_id}").json()["status"] == "queued"


def test_bad_signature_properties_refused_with_glances_reasons(member: User, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    cert_id = member.store_certificate(_certificate(key))
    cases = [
        (_properties("not base64!", "SHA-256", "RSA-PSS", cert_id), "not properly encoded using base64"),
        (_properties("AAAA", "MD5", "RSA-PSS", cert_id), "Invalid signature hash method: MD5"),
        (_properties("AAAA", "SHA-256", "RSA-OAEP", cert_id), "Invalid signature key type: RSA-OAEP"),
        # An RSA key type with an elliptic-curve certificate.
        (_properties("AAAA", "SHA-256", "RSA-PSS", cert_id), "Invalid public key type for signature key type: RSA-PSS"),
    ]
    for properties, reason in cases:
        image_id = _create(member, properties)
        response = _put(member, image_id, b"x" * 1024)
        assert response.status_code == 400, response.text
        assert reason in response.text


def test_incomplete_signature_properties_are_not_verified_as_in_glance(member: User, tmp_path: Path) -> None:
    image_id = _create(member, {"img_signature": "AAAA", "img_signature_hash_method": "SHA-256"})
    assert _put(member, image_id, raw_disk_bytes(1024)).status_code == 204
    assert member.http.get(f"/v2/images/{image_id}").json()["status"] == "active"


def _wait_task(user: User, image_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tasks = user.http.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        if tasks and tasks[0]["status"] in ("success", "failure"):
            return dict(tasks[0])
        time.sleep(0.3)
    raise AssertionError(f"the import of {image_id} did not finish")


def test_glance_direct_import_verified_then_tampered_import_fails(
    member: User, glimpse_signing: GlimpseServer, tmp_path: Path
) -> None:
    source, properties = _rsa_signed(member, tmp_path, "sha512", bits=3072)
    method = {"method": {"name": "glance-direct"}}

    good = _create(member, properties)
    assert member.http.put(f"/v2/images/{good}/stage", content=source.read_bytes()).status_code == 204
    assert member.http.post(f"/v2/images/{good}/import", json=method).status_code == 202
    assert _wait_task(member, good)["status"] == "success"
    assert member.http.get(f"/v2/images/{good}").json()["status"] == "active"

    files_before = _stored_files(glimpse_signing)
    bad = _create(member, properties)
    assert member.http.put(f"/v2/images/{bad}/stage", content=_tampered(source).read_bytes()).status_code == 204
    assert member.http.post(f"/v2/images/{bad}/import", json=method).status_code == 202
    task = _wait_task(member, bad)
    assert task["status"] == "failure"
    assert "Signature verification failed" in task["message"]
    image = member.http.get(f"/v2/images/{bad}").json()
    assert image["status"] == "queued"
    assert "os_glance_failed_import" in image
    assert _stored_files(glimpse_signing) == files_before
    assert not (glimpse_signing.data_dir / "staging" / bad).exists()


def test_barbican_down_fails_clearly_and_keeps_nothing(
    member: User,
    glimpse_signing: GlimpseServer,
    barbican_server: BarbicanServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    source, properties = _rsa_signed(member, tmp_path)
    cert_id = properties["img_signature_certificate_uuid"]
    image_id = _create(member, properties)
    files_before = _stored_files(glimpse_signing)
    used_before = _used_bytes(member)
    barbican_server.stop()
    try:
        response = _put(member, image_id, source.read_bytes())
        assert response.status_code == 503
        assert f"Unable to retrieve certificate with ID: {cert_id}" in response.text
        assert "could not be reached" in response.text
        _assert_nothing_kept(member, glimpse_signing, image_id, files_before)
        assert _used_bytes(member) == used_before
    finally:
        barbican_server.start()
    # Once Barbican is back the same upload goes through.
    assert _put(member, image_id, source.read_bytes()).status_code == 204
