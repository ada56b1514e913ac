"""Signed images on the ways in that run as tasks: web-download (from a real HTTP server on loopback) and copy-image
(between two file stores), with the real Keystone and Barbican of test_signed_images.py.

The certificate is fetched with the caller's token when the import is asked for; the task checks the signature over
the bytes as they arrive, before any store is written. A refusal fails the task and leaves the image as it was
(queued, or active with its one copy), no byte in any store or scratch folder, and no quota reservation.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import dsa, rsa

from tests.barbican.fixtures import barbican_server  # noqa: F401  (a real Barbican)
from tests.barbican.server import BarbicanServer
from tests.disk_bytes import raw_disk_bytes
from tests.functional.http_server import FileServer
from tests.functional.server import GlimpseServer
from tests.functional.test_signed_images import (
    KEYSTONE_FLAVOR,
    PrivateKey,
    User,
    _certificate,
    _create,
    _openssl_sign,
    _properties,
    _tampered,
    _wait_task,
)
from tests.keystone.server import KeystoneServer
from tests.keystone.setup import authtoken_conf

STORES = ("fast", "slow")


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FileServer]:
    with FileServer(tmp_path_factory.mktemp("signed-web")) as files:
        yield files


@pytest.fixture(scope="module")
def importer(
    keystone_server: KeystoneServer,
    keystone_projects: dict[str, Any],
    barbican_server: BarbicanServer,  # noqa: F811
    web: FileServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[GlimpseServer]:
    """Two file stores; web-download may reach the loopback file server (as test_imports.py allows it)."""
    root = tmp_path_factory.mktemp("glimpse-signed-imports")
    conf = (
        "enabled_backends = fast:file, slow:file\n"
        + KEYSTONE_FLAVOR
        + authtoken_conf(keystone_server)
        + "[glance_store]\ndefault_backend = fast\n"
        + "".join(f"[{name}]\nfilesystem_store_datadir = {root / name}\n" for name in STORES)
        + f"[import_filtering_opts]\nallow_private_addresses = true\nallowed_ports = 80,443,{web.port}\n"
    )
    server = GlimpseServer(root / "srv", extra_conf=conf).start()
    yield server
    server.stop()


@pytest.fixture
def member(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], importer: GlimpseServer, tmp_path: Path
) -> User:
    return User(keystone_server, keystone_projects, "Prj1-member", tmp_path, importer.url)


@pytest.fixture
def admin(
    keystone_server: KeystoneServer, keystone_projects: dict[str, Any], importer: GlimpseServer, tmp_path: Path
) -> User:
    """copy-image is for admins by default, as in Glance: the project's admin copies its member's image."""
    return User(keystone_server, keystone_projects, "Prj1-admin", tmp_path, importer.url)


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _dsa() -> dsa.DSAPrivateKey:
    return dsa.generate_private_key(key_size=2048)


def _signed_file(
    user: User, web: FileServer, make_key: Callable[[], PrivateKey], key_type: str
) -> tuple[Path, dict[str, str]]:
    """A new disk on the web server, signed (SHA-256) with a new key whose certificate `user` stored in Barbican."""
    key = make_key()
    cert_id = user.store_certificate(_certificate(key))
    source = web.root / f"{uuid.uuid4().hex}.raw"
    source.write_bytes(raw_disk_bytes(700 * 1024 + 5))
    signature = _openssl_sign(key, "sha256", source, pss=key_type == "RSA-PSS")
    return source, _properties(signature, "SHA-256", key_type, cert_id)


def _web_download(user: User, web: FileServer, image_id: str, source: Path, stores: list[str]) -> dict[str, Any]:
    method = {"name": "web-download", "uri": f"{web.url}/files/{source.name}"}
    response = user.http.post(f"/v2/images/{image_id}/import", json={"method": method, "stores": stores})
    assert response.status_code == 202, response.text
    return _wait_task(user, image_id)


def _copy(user: User, image_id: str, stores: list[str]) -> dict[str, Any]:
    response = user.http.post(
        f"/v2/images/{image_id}/import", json={"method": {"name": "copy-image"}, "stores": stores}
    )
    assert response.status_code == 202, response.text
    return _wait_task(user, image_id)


def _kept(server: GlimpseServer, image_id: str) -> list[Path]:
    """Every file of the image the server keeps: in either store, staging or a task's scratch folder."""
    return sorted(p for p in server.workdir.parent.rglob(f"*{image_id}*") if p.is_file())


def _in_store(server: GlimpseServer, store: str, image_id: str) -> list[Path]:
    return sorted((server.workdir.parent / store).glob(f"{image_id}*"))


def _reserved(server: GlimpseServer, image_id: str) -> list[tuple[int]]:
    with sqlite3.connect(server.data_dir / "glimpse.db") as db:
        return db.execute("SELECT bytes FROM quota_reservations WHERE image_id = ?", (image_id,)).fetchall()


@pytest.mark.parametrize(("make_key", "key_type"), [(_rsa, "RSA-PSS"), (_dsa, "DSA")], ids=["rsa-pss", "dsa"])
def test_web_download_verifies_the_signature_and_a_changed_byte_keeps_nothing(
    member: User,
    importer: GlimpseServer,
    web: FileServer,
    make_key: Callable[[], PrivateKey],
    key_type: str,
) -> None:
    source, properties = _signed_file(member, web, make_key, key_type)

    good = _create(member, properties)
    task = _web_download(member, web, good, source, ["fast", "slow"])
    assert task["status"] == "success", task["message"]
    image = member.http.get(f"/v2/images/{good}").json()
    assert (image["status"], image["size"]) == ("active", source.stat().st_size)
    assert sorted(image["stores"].split(",")) == ["fast", "slow"]
    assert member.http.get(f"/v2/images/{good}/file").content == source.read_bytes()

    # The web server now serves the same name with one byte changed: the signature no longer holds.
    tampered = _tampered(source)
    tampered.replace(source)
    bad = _create(member, properties)
    task = _web_download(member, web, bad, source, ["fast", "slow"])
    assert task["status"] == "failure"
    assert f"Signature verification failed for image {bad}: Signature verification failed" in task["message"]
    image = member.http.get(f"/v2/images/{bad}").json()
    assert (image["status"], image["size"], image["checksum"]) == ("queued", None, None)
    assert sorted(image["os_glance_failed_import"].split(",")) == ["fast", "slow"]
    assert image["os_glance_importing_to_stores"] == ""
    assert _kept(importer, bad) == []
    assert _reserved(importer, bad) == []
    # Refused once, the image takes a good import afterwards (the original bytes again).
    source.write_bytes(member.http.get(f"/v2/images/{good}/file").content)
    assert _web_download(member, web, bad, source, ["fast"])["status"] == "success"
    assert member.http.get(f"/v2/images/{bad}").json()["status"] == "active"


def test_copy_image_verifies_the_signature_again(
    member: User, admin: User, importer: GlimpseServer, web: FileServer
) -> None:
    source, properties = _signed_file(member, web, _rsa, "RSA-PSS")
    image_id = _create(member, properties)
    assert _web_download(member, web, image_id, source, ["fast"])["status"] == "success"

    copied = _copy(admin, image_id, ["slow"])
    assert copied["status"] == "success", copied["message"]
    image = member.http.get(f"/v2/images/{image_id}").json()
    assert sorted(image["stores"].split(",")) == ["fast", "slow"]
    assert len(_in_store(importer, "slow", image_id)) == 1

    # A second image whose stored bytes were changed at rest (one byte, in the fast store): its copy is refused by
    # the signature, before the slow store is written, and the image keeps its one copy.
    # (Data of its own: identical data would be shared with the first image, deduplicated.)
    other_source, other_properties = _signed_file(member, web, _rsa, "RSA-PSS")
    other_id = _create(member, other_properties)
    assert _web_download(member, web, other_id, other_source, ["fast"])["status"] == "success"
    [stored] = _in_store(importer, "fast", other_id)
    _tampered(stored).replace(stored)
    refused = _copy(admin, other_id, ["slow"])
    assert refused["status"] == "failure"
    assert f"Signature verification failed for image {other_id}: Signature verification failed" in refused["message"]
    image = member.http.get(f"/v2/images/{other_id}").json()
    assert (image["status"], image["stores"]) == ("active", "fast")
    assert image["os_glance_failed_import"] == "slow"
    assert _in_store(importer, "slow", other_id) == []
    assert _kept(importer, other_id) == [stored]
    assert _reserved(importer, other_id) == []
