"""Bad input to the recycle bin, families and deprecation is a 4xx in Glance's format, never a 5xx (in-process,
on the embedded database)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tests.integration.inprocess import app_client, settings_for

ADMIN = {"Accept": "application/json"}
OWNER = {**ADMIN, "X-Project-Id": "owner", "X-Roles": "member,reader"}
PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data: Path = tmp_path_factory.mktemp("lifecycle-inputs")
    with app_client(settings_for(data, None, "[recycle_bin]\nretention_period = 600\n")) as c:
        yield c


def _expect(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"].startswith(str(status)) and words in body["message"], body


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"retention_period": -1}, "retention_period"),
        ({"retention_period": "7d"}, "retention_period"),
        ({"retention_period": 2**40}, "retention_period"),
        ({"retention": 5}, "retention_period"),
        ([], "retention_period"),
    ],
)
def test_bad_retention_bodies(client: TestClient, body: object, words: str) -> None:
    _expect(client.put("/v2/recycle-bin/retention/p", json=body, headers=ADMIN), 400, words)


def test_retention_is_the_administrators(client: TestClient) -> None:
    _expect(client.put("/v2/recycle-bin/retention/owner", json={"retention_period": 1}, headers=OWNER), 403, "")
    shown = client.get("/v2/recycle-bin/retention/owner", headers=OWNER).json()
    assert shown == {"project_id": "owner", "retention_period": 600, "source": "default"}
    _expect(client.get("/v2/recycle-bin/retention/other", headers=OWNER), 403, "")


@pytest.mark.parametrize("query", ["limit=x", "limit=-1", "marker=00000000-0000-0000-0000-000000000000"])
def test_bad_bin_queries(client: TestClient, query: str) -> None:
    response = client.get(f"/v2/recycle-bin?{query}", headers=OWNER)
    assert response.status_code == 400, response.text


def test_unknown_images_and_families_are_404(client: TestClient) -> None:
    missing = "00000000-0000-0000-0000-000000000000"
    _expect(client.post(f"/v2/recycle-bin/{missing}/restore", headers=OWNER), 404, "not in the recycle bin")
    _expect(client.delete(f"/v2/recycle-bin/{missing}", headers=OWNER), 404, "not in the recycle bin")
    _expect(client.get("/v2/families/nothing-here/latest", headers=OWNER), 404, "no active image")
    _expect(client.get("/v2/images?deprecation_status=retired", headers=OWNER), 400, "deprecation_status")


def test_deprecation_values_are_checked(client: TestClient) -> None:
    image = client.post("/v2/images", json={"name": "x"}, headers=OWNER).json()["id"]
    for change, words in (
        ({"op": "add", "path": "/deprecate_at", "value": "2030-02-30"}, "ISO 8601"),
        ({"op": "add", "path": "/obsolete_at", "value": "99999-01-01T00:00:00Z"}, "ISO 8601"),
        ({"op": "add", "path": "/replacement_image", "value": image}, "its own replacement"),
        ({"op": "add", "path": "/deprecation_status", "value": "gone"}, "deprecation_status"),
    ):
        _expect(client.patch(f"/v2/images/{image}", json=[change], headers={**OWNER, **PATCH}), 400, words)
    # Another project's private image is as unknown as a missing one.
    private = client.post("/v2/images", json={"name": "y", "visibility": "private"}, headers=ADMIN).json()["id"]
    change = {"op": "add", "path": "/replacement_image", "value": private}
    _expect(client.patch(f"/v2/images/{image}", json=[change], headers={**OWNER, **PATCH}), 400, "does not exist")
    # A queued image deleted to the bin comes back queued.
    assert client.delete(f"/v2/images/{image}", headers=OWNER).status_code == 204
    restored = client.post(f"/v2/recycle-bin/{image}/restore", headers=OWNER)
    assert restored.status_code == 200 and restored.json()["status"] == "queued"
