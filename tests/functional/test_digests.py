"""RFC 9530 digests end to end against a real `glimpse serve`: forged Content-Digest / Repr-Digest on PUT file and
on stage are refused and leave nothing behind (status queued, no data, no reservation); downloads carry a Repr-Digest
the test checks itself, on 200 and on 206."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.disk_bytes import raw_disk_bytes
from tests.functional.server import GlimpseServer

DATA = raw_disk_bytes(200_000)
# One image fits the quota, two do not: a reservation a refused upload left behind would make the next one fail.
CONF = "user_storage_quota = 300000\n"


def b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


GOOD_512 = f"sha-512=:{b64(hashlib.sha512(DATA).digest())}:"
GOOD_256 = f"sha-256=:{b64(hashlib.sha256(DATA).digest())}:"
FORGED = {
    "wrong sha-512": {"Repr-Digest": f"sha-512=:{b64(hashlib.sha512(DATA + b'!').digest())}:"},
    "wrong sha-256": {"Content-Digest": f"sha-256=:{b64(hashlib.sha256(b'other').digest())}:"},
    "one right, one wrong": {"Repr-Digest": GOOD_512, "Content-Digest": f"sha-256=:{b64(bytes(32))}:"},
    "wrong length": {"Repr-Digest": f"sha-512=:{b64(hashlib.sha256(DATA).digest())}:"},
    "malformed": {"Content-Digest": "sha-512=abc"},
    "not base64": {"Repr-Digest": "sha-256=:!!!!:"},
}


@pytest.fixture(scope="module")
def glimpse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GlimpseServer]:
    server = GlimpseServer(tmp_path_factory.mktemp("digests"), extra_conf=CONF).start()
    yield server
    server.stop()


@pytest.fixture
def api(glimpse: GlimpseServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=glimpse.url, timeout=60, headers={"X-Project-Id": os.urandom(8).hex()}) as client:
        yield client


def new_image(api: httpx.Client) -> str:
    response = api.post("/v2/images", json={"disk_format": "raw", "container_format": "bare"})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def files_of(server: GlimpseServer, image_id: str) -> list[Path]:
    return [p for p in server.workdir.rglob(f"{image_id}*") if p.is_file()]


def put(api: httpx.Client, image_id: str, where: str, headers: dict[str, str], data: bytes = DATA) -> httpx.Response:
    return api.put(
        f"/v2/images/{image_id}/{where}", content=data, headers={"Content-Type": "application/octet-stream", **headers}
    )


@pytest.mark.parametrize("where", ["file", "stage"])
@pytest.mark.parametrize("forged", list(FORGED))
def test_a_forged_digest_keeps_nothing(glimpse: GlimpseServer, api: httpx.Client, where: str, forged: str) -> None:
    image_id = new_image(api)
    refused = put(api, image_id, where, FORGED[forged])
    assert refused.status_code == 400, refused.text
    assert any(field in refused.text for field in FORGED[forged])  # Glance's error body names the field
    image = api.get(f"/v2/images/{image_id}").json()
    assert image["status"] == "queued" and image["size"] is None and image["checksum"] is None
    assert files_of(glimpse, image_id) == []
    # Nothing reserved is left: the project's whole quota is there for the honest upload.
    assert put(api, image_id, where, {"Repr-Digest": GOOD_512}).status_code == 204
    assert api.get(f"/v2/images/{image_id}").json()["status"] == ("active" if where == "file" else "uploading")


def test_glance_error_format_names_the_digest(api: httpx.Client) -> None:
    image_id = new_image(api)
    refused = put(api, image_id, "file", FORGED["wrong sha-512"], data=DATA)
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("text/html") or refused.json()
    assert "Repr-Digest sha-512" in refused.text


@pytest.mark.parametrize("where", ["file", "stage"])
def test_unknown_algorithms_only_verify_nothing(api: httpx.Client, where: str) -> None:
    image_id = new_image(api)
    headers = {"Repr-Digest": "md5=:AAAAAAAAAAAAAAAAAAAAAA==:, x-new-algo=:AAAA:", "Content-Digest": "adler=?1"}
    assert put(api, image_id, where, headers).status_code == 204


def test_matching_digests_are_accepted_on_both_fields(api: httpx.Client) -> None:
    image_id = new_image(api)
    headers = {"Repr-Digest": f"{GOOD_512}, {GOOD_256}", "Content-Digest": GOOD_256}
    assert put(api, image_id, "file", headers).status_code == 204
    assert api.get(f"/v2/images/{image_id}").json()["os_hash_value"] == hashlib.sha512(DATA).hexdigest()


def test_a_staged_import_with_a_digest_becomes_active(api: httpx.Client) -> None:
    image_id = new_image(api)
    assert put(api, image_id, "stage", {"Content-Digest": GOOD_256}).status_code == 204
    started = api.post(f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}})
    assert started.status_code == 202, started.text
    for _ in range(300):
        if api.get(f"/v2/images/{image_id}").json()["status"] == "active":
            break
        time.sleep(0.1)
    assert api.get(f"/v2/images/{image_id}").json()["status"] == "active"
    assert_repr_digest(api.get(f"/v2/images/{image_id}/file"), DATA)


def assert_repr_digest(response: httpx.Response, whole: bytes) -> None:
    """What any HTTP client can do: check the body it got against the Repr-Digest (RFC 9530)."""
    algorithm, _, value = response.headers["Repr-Digest"].partition("=")
    assert algorithm == "sha-512"
    assert base64.b64decode(value.strip(":")) == hashlib.sha512(whole).digest()


def test_downloads_carry_the_whole_representation_digest(api: httpx.Client) -> None:
    image_id = new_image(api)
    assert put(api, image_id, "file", {}).status_code == 204
    whole = api.get(f"/v2/images/{image_id}/file")
    assert whole.status_code == 200 and whole.content == DATA
    assert_repr_digest(whole, whole.content)
    part = api.get(f"/v2/images/{image_id}/file", headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == DATA[10:100]
    assert_repr_digest(part, DATA)  # the digest of the whole image, not of the range


def test_no_data_no_digest(api: httpx.Client) -> None:
    image_id = new_image(api)
    empty = api.get(f"/v2/images/{image_id}/file")
    assert empty.status_code == 204 and "repr-digest" not in empty.headers
